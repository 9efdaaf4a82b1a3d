-- scripts/docs-coverage.lua DOCS_DIR: the part of `make docs` (scripts/docs)
-- that keeps the reference from rotting.  LDoc documents what has a doc
-- comment; this checks, against the modules as they load, that everything
-- public has one:
--   * every member of `di` (init.lua), of di.config, di.errors and di.where;
--   * every method of the client, every hook the scheduler fires
--     (call/scheduler.lua) and every resource (resources/*.lua) as a field
--     of the client, and every method of each resource;
--   * every setting of config.SETTINGS as a field of the `settings` table,
--     and every error kind in the `Error` table's `kind`;
--   * no doc comment holds raw HTML (the "plain" format passes it through:
--     `key_<column>` would lose `<column>`; put such text in backticks).
-- Prints what is missing and exits 1, or prints nothing.
local dir = assert(arg[1], "usage: docs-coverage.lua DOCS_DIR")

local problems = {}
local function problem(fmt, ...) problems[#problems + 1] = string.format(fmt, ...) end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- The anchors (item names) of a generated page, and the page itself.
local pages = {}
local function page(name)
  if pages[name] == nil then
    local html = slurp(dir .. "/modules/" .. name .. ".html")
      or slurp(dir .. "/classes/" .. name .. ".html")
    local anchors = {}
    for a in (html or ""):gmatch('<a name = "([^"]+)"></a>') do anchors[a] = true end
    pages[name] = { html = html, anchors = anchors }
    if not html then problem("%s: no page in %s (is it in config.ld's file list?)", name, dir) end
  end
  return pages[name]
end

-- The text of one item of a page: from its anchor to the next one.
local function item_text(name, anchor)
  local html = page(name).html or ""
  local i = html:find('<a name = "' .. anchor .. '"></a>', 1, true)
  if not i then return nil end
  local j = html:find('<a name = "', i + 1, true) or #html
  return html:sub(i, j)
end

local function need(name, anchor, what)
  if not page(name).anchors[anchor] then
    problem("%s: %s is not documented (no doc comment, or not an LDoc item)", name, what or anchor)
  end
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do if type(k) == "string" then keys[#keys + 1] = k end end
  table.sort(keys)
  return keys
end

-- di and the modules it exposes: every member.
local di = require "dialoginsight"
for _, k in ipairs(sorted_keys(di)) do need("dialoginsight", k, "di." .. k) end
for mod, t in pairs { ["dialoginsight.config"] = di.config, ["dialoginsight.errors"] =
    require "dialoginsight.errors", ["dialoginsight.records.where"] = di.where } do
  for _, k in ipairs(sorted_keys(t)) do need(mod, k) end
end

-- A class's methods (metamethods and the constructor aside).
local function methods(mod, class, prefix)
  for _, k in ipairs(sorted_keys(class)) do
    if type(class[k]) == "function" and not k:match("^__") and k ~= "new" then
      need(mod, prefix .. ":" .. k)
    end
  end
end

-- The client: methods, hooks, resources.
local client = require "dialoginsight.client"
methods("dialoginsight.client", client.Client, "Client")
local scheduler = slurp("lua/dialoginsight/call/scheduler.lua")
local hooks = {}
for h in scheduler:gmatch('"(on_%w+)"') do hooks[h] = true end
for h in scheduler:gmatch("hooks%.(on_%w+)") do hooks[h] = true end
for _, h in ipairs(sorted_keys(hooks)) do need("dialoginsight.client", "Client." .. h, "the hook " .. h) end

local list = assert(io.popen("ls lua/dialoginsight/resources/*.lua"))
for path in list:lines() do
  local name = path:match("([%w_]+)%.lua$")
  local mod = "dialoginsight.resources." .. name
  if name == "tables" then
    local t = require(mod)
    methods(mod, getmetatable(t.new({}, 1)).__index, "Table")
  elseif name ~= "base" and not name:match("^pager") then -- (internal: the iterators)
    need("dialoginsight.client", "Client." .. name, "client." .. name)
    local class = require(mod)
    local prefix = name:sub(1, 1):upper() .. name:sub(2)
    methods(mod, class, prefix)
  end
end
list:close()

-- Every setting, with its meaning.
local settings = item_text("dialoginsight.config", "settings") or ""
for _, def in ipairs(di.config.SETTINGS) do
  if not settings:find('<span class="parameter">' .. def.name .. '</span>', 1, true) then
    problem("dialoginsight.config: setting %s has no @field in the settings table", def.name)
  end
end

-- Every kind of error, in the description of the field kind.
local kinds = (item_text("dialoginsight.errors", "Error") or "")
  :match('<span class="parameter">kind</span>(.-)</li>') or ""
for _, k in ipairs(sorted_keys(require("dialoginsight.errors").KINDS)) do
  if not kinds:find("%f[%w_]" .. k .. "%f[^%w_]") then
    problem("dialoginsight.errors: the kind %s is not in Error's field kind", k)
  end
end

-- Raw HTML in doc comments (outside backticks and @usage).
local cfg = slurp("config.ld")
for file in cfg:match("file = (%b{})"):gmatch('"([^"]+)"') do
  local n, in_doc, in_usage = 0, false, false
  for line in (slurp(file) or ""):gmatch("([^\n]*)\n") do
    n = n + 1
    local text = line:match("^%s*%-%-%-(.*)") or (in_doc and line:match("^%s*%-%-(.*)"))
    in_doc = text ~= nil and text ~= false
    if not in_doc then in_usage = false end
    if in_doc then
      if text:match("^%s*@usage") then in_usage = true
      elseif text:match("^%s*@") then in_usage = false end
      local bare = text:gsub("`[^`]*`", "")
      if not in_usage and (bare:find("<[%a/!?]") or bare:find("&[%a#]")) then
        problem("%s:%d: raw HTML in a doc comment (LDoc's plain format passes it through): "
          .. "put it in backticks", file, n)
      end
    end
  end
end

if #problems > 0 then
  io.stderr:write(table.concat(problems, "\n"), "\n")
  io.stderr:write(#problems, " problem(s) in the reference\n")
  os.exit(1)
end
