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
--     `key_<column>` would lose `<column>`; put such text in backticks);
--   * the reference reads whole: every module's whole name in each page's
--     sidebar, breakable at its dots to fit it (14em); no summary cut short
--     (LDoc ends it at the first ". ": "e.g. " or "x .. y" cut it); no
--     internal (@local) function on any page; every resource a class.
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

-- The functions a doc comment marks @local, as "Class:method" (or "M.f"):
-- internal, so absent from the reference and needing no entry.
local cfg = slurp("config.ld")
local files = {}
for file in cfg:match("file = (%b{})"):gmatch('"([^"]+)"') do files[#files + 1] = file end
-- the call path's own entry points (the fuzz targets' and specs'), internal
-- whether or not a doc comment still says so
local internal = { ["Client:prepare"] = "lua/dialoginsight/client.lua",
                   ["Client:interpret"] = "lua/dialoginsight/client.lua" }
for _, file in ipairs(files) do
  local local_tag = false
  for line in (slurp(file) or ""):gmatch("([^\n]*)\n") do
    if line:match("^%s*%-%-%-") then local_tag = false end
    if line:match("^%s*%-%-%s*@local") then local_tag = true end
    local fn = line:match("^function ([%w_]+[:.][%w_]+)%(")
    if fn then
      if local_tag then internal[fn] = file end
      local_tag = false
    elseif not line:match("^%s*%-%-") then
      local_tag = false
    end
  end
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
    if type(class[k]) == "function" and not k:match("^__") and k ~= "new"
        and not internal[prefix .. ":" .. k] then
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

local resources = {}
local list = assert(io.popen("ls lua/dialoginsight/resources/*.lua"))
for path in list:lines() do
  local name = path:match("([%w_]+)%.lua$")
  local mod = "dialoginsight.resources." .. name
  if name == "tables" then
    local t = require(mod)
    methods(mod, getmetatable(t.new({}, 1)).__index, "Table")
    resources[#resources + 1] = mod
  elseif name ~= "base" and not name:match("^pager") then -- (internal: the iterators)
    need("dialoginsight.client", "Client." .. name, "client." .. name)
    local class = require(mod)
    local prefix = name:sub(1, 1):upper() .. name:sub(2)
    methods(mod, class, prefix)
    resources[#resources + 1] = mod
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

-- Every resource has one shape: a class (@classmod), as client.contacts is.
for _, mod in ipairs(resources) do
  if not slurp(dir .. "/classes/" .. mod .. ".html") then
    problem("%s: not a class in the reference (use @classmod, as the other resources do)", mod)
  end
end

-- The generated pages, and the modules config.ld lists.
local generated, modules = {}, {}
local ls = assert(io.popen("cd " .. dir .. " && ls index.html modules/*.html classes/*.html"))
for f in ls:lines() do generated[#generated + 1] = f end
ls:close()
local module_of = {}
for _, file in ipairs(files) do
  local src = slurp(file) or ""
  local name = src:match("@classmod ([%w_.]+)") or src:match("@module ([%w_.]+)")
  modules[#modules + 1] = name or file
  module_of[file] = name
end

local function unhtml(s)
  return (s:gsub("<[^>]+>", ""):gsub("&quot;", '"'):gsub("&lt;", "<"):gsub("&gt;", ">")
    :gsub("&amp;", "&"):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
end
local SIDEBAR_CHARS = 24 -- what a 14em sidebar shows on one line
for _, f in ipairs(generated) do
  local html = slurp(dir .. "/" .. f) or ""
  -- the sidebar: every module, by its whole name, wrapping at its dots
  local nav = html:match('<div id="navigation">(.-)<div id="content">') or ""
  local shown = {}
  for text in nav:gmatch("<li>(.-)</li>") do
    local whole = unhtml(text)
    shown[whole] = true
    for piece in (text:gsub("<wbr>", " "):gsub("<[^>]+>", "")):gmatch("%S+") do
      if #piece > SIDEBAR_CHARS then
        problem("%s: the sidebar cuts %q (%d characters with no break: wider than the sidebar)",
          f, whole, #piece)
      end
    end
  end
  for _, m in ipairs(modules) do
    if not shown[m] then problem("%s: the sidebar does not show the module %s whole", f, m) end
  end
  -- summaries: the index's and each item's, and a page's own below its title
  local summaries = {}
  for t in html:gmatch('<td class="summary">(.-)</td>') do summaries[#summaries + 1] = t end
  summaries[#summaries + 1] = html:match("</h1>%s*<p>(.-)</p>")
  for _, t in ipairs(summaries) do
    local text = unhtml(t)
    local function count(c) return select(2, text:gsub("%" .. c, "")) end
    -- a cut leaves a bracket open, a lone backtick (LDoc pairs the others),
    -- or an abbreviation or ellipsis at the end
    if count("(") ~= count(")") or count("{") ~= count("}") or count("`") % 2 == 1
        or text:match("%f[%w]e%.g%.?$") or text:match("%f[%w]i%.e%.?$")
        or text:match("%f[%w]etc%.$") or text:match("%.%.$") or text:match("%f[%w]cf%.$") then
      problem("%s: a summary cut short (LDoc ends it at the first '. '): %q", f, text)
    end
  end
  -- internal functions stay out: a method by its name anywhere, a module's
  -- function (M.f) as an item of its module's page
  for fn, file in pairs(internal) do
    local page_of = f:match("^%a+/(.+)%.html$")
    if (fn:find(":", 1, true) and html:find(fn, 1, true))
        or (page_of == module_of[file] and html:find('name = "' .. fn:gsub("^M%.", "") .. '"', 1, true)) then
      problem("%s: shows %s, an internal function (mark its doc comment @local)", f, fn)
    end
  end
end

-- Raw HTML in doc comments (outside backticks and @usage).
for _, file in ipairs(files) do
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
