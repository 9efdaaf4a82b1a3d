-- The READMEs run as written (issue 15, point 11): every Lua block of
-- README.md, examples/openresty/README.md and docs/*.md marked runnable runs
-- against the sandbox, each in a fresh lua5.4 with the checkout's modules
-- and the sandbox's DI_* environment, and must exit 0.  What README.md
-- states of the code is checked against it: the evidence of each resource
-- method (the registry), and the examples make demo runs.
--
-- The marker is an HTML comment on the line right before the ```lua fence
-- (invisible once rendered):
--   <!-- runnable: why -->                  the block is a whole script
--   <!-- runnable with client: why -->      the block runs after
--       local di = require "dialoginsight"; local client = di.new()
--     (the `di` and `client` of the README's quick start)
-- A marker anywhere else, or another comment right before a ```lua fence,
-- fails the spec: a typo must not turn a block's check off.
local sbx = require "support.sandbox"

local ROOT = assert(io.popen("pwd")):read("*l")
local DOCS = { "README.md", "examples/openresty/README.md" }
do -- the pages of docs/ (internals moved there keep their runnable blocks)
  local ls = assert(io.popen("cd " .. ROOT .. " && ls docs/*.md"))
  for path in ls:lines() do DOCS[#DOCS + 1] = path end
  ls:close()
end
local PRELUDE = 'local di = require "dialoginsight"; local client = di.new(); '

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- The marked blocks of a Markdown file: { line =, with_client =, code =,
-- section = }, and the problems of misplaced or unknown markers.
local function marked_blocks(path)
  local lines, blocks, problems = {}, {}, {}
  for line in (slurp(ROOT .. "/" .. path) .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  local section = ""
  local i = 1
  while i <= #lines do
    local line = lines[i]
    section = line:match("^#+%s+(.*)") or section
    -- an HTML comment line right before a ```lua fence is a marker, and so
    -- is one that starts with "run" anywhere
    local comment = line:match("^%s*<!%-%-%s*(.-)%s*%-%->%s*$")
    local before_lua = (lines[i + 1] or ""):match("^%s*```lua%s*$") ~= nil
    local marker = comment and (before_lua or comment:match("^run")) and comment
    if line:find("<!--%s*runnable") and not comment then
      problems[#problems + 1] = path .. ":" .. i .. ": a runnable marker must be a line of its own"
    end
    if marker then
      local with_client = marker:match("^runnable with client:") ~= nil
      if not with_client and not marker:match("^runnable:") and marker ~= "runnable" then
        problems[#problems + 1] = path .. ":" .. i .. ": unknown marker <!-- " .. marker .. " -->"
      end
      local indent = (lines[i + 1] or ""):match("^(%s*)```lua%s*$")
      if not indent then
        problems[#problems + 1] = path .. ":" .. i .. ": the marker is not right before a ```lua fence"
      else
        local code, j = {}, i + 2
        while lines[j] and not lines[j]:match("^%s*```%s*$") do
          code[#code + 1] = lines[j]:sub(1, #indent) == indent and lines[j]:sub(#indent + 1) or lines[j]
          j = j + 1
        end
        if not lines[j] then problems[#problems + 1] = path .. ":" .. i .. ": the block never ends" end
        blocks[#blocks + 1] = { line = i + 1, with_client = with_client, section = section,
                                code = table.concat(code, "\n") .. "\n" }
        i = j
      end
    end
    i = i + 1
  end
  return blocks, problems
end

-- Runs a block as a script; returns exit status, stdout, stderr.
local function run(block)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. q(dir)))
  local f = assert(io.open(dir .. "/block.lua", "wb"))
  f:write((block.with_client and PRELUDE or "") .. block.code)
  f:close()
  local cmd = string.format("cd %s && LUA_PATH=%s LUA_CPATH=%s lua5.4 %s > %s 2> %s", q(ROOT),
    q("lua/?.lua;lua/?/init.lua;;"), q("build/lua5.4/?.so;;"), q(dir .. "/block.lua"),
    q(dir .. "/out"), q(dir .. "/err"))
  local ok, _, code = os.execute(cmd)
  if type(ok) == "number" then code = ok / 256 end
  local out, err = slurp(dir .. "/out"), slurp(dir .. "/err")
  os.execute("rm -rf " .. q(dir))
  return code, out, err
end

describe("the READMEs run as written", function()
  setup(function()
    sbx.env("DI_KEY") -- the sandbox's environment, or a loud failure saying how to get it
    sbx.reset({ contacts = 20 })
  end)

  for _, path in ipairs(DOCS) do
    local blocks, problems = marked_blocks(path)

    it(path .. ": every runnable marker is well-formed and right before a ```lua fence", function()
      assert.same({}, problems)
    end)

    for _, block in ipairs(blocks) do
      it(string.format("%s:%d (%s)%s", path, block.line, block.section,
          block.with_client and ", with di and client" or ""), function()
        local code, out, err = run(block)
        assert.equal(0, code, "the block failed:\n" .. block.code .. "\nstdout:\n" .. out
          .. "\nstderr:\n" .. err)
      end)
    end
  end

  it("examples/quickstart.lua runs in plain Lua 5.4, as make demo runs it", function()
    local demo = slurp(ROOT .. "/scripts/demo")
    assert.truthy(demo:find("lua5.4 examples/quickstart.lua", 1, true),
      "scripts/demo does not run examples/quickstart.lua in plain Lua 5.4")
    local code, out, err = run({ code = slurp(ROOT .. "/examples/quickstart.lua") })
    assert.equal(0, code, out .. err)
    assert.truthy(out:find("project %d+: "), out)
    assert.truthy(out:find("\n[a-z]+ ann@example%.com %(idContact %d+%)"), out)
    assert.truthy(out:find("found Ann ann@example.com in Montréal, idContact %d+, Newsletter opt%-in: true"), out)
  end)

  it("README.md: the evidence table names every resource method, with the registry's evidence", function()
    local registry = require("dialoginsight.registry").default
    local text = slurp(ROOT .. "/README.md")
    local tbl = text:match("<!%-%- evidence:[^\n]*\n(.-)\n\n")
    assert.truthy(tbl, "README.md has no table after an <!-- evidence: ... --> marker")
    local listed, calls = {}, {}
    for row in tbl:gmatch("[^\n]+") do
      local methods, call, evidence = row:match("^| (.-) | `([%w_]+%.[%w_]+)` | (%a+)")
      if methods then
        local service, method = call:match("^(.-)%.(.*)$")
        local entry = registry:lookup(service, method)
        assert.truthy(entry, "README.md names " .. call .. ", which the registry does not have")
        assert.equal(entry.wire, evidence, call .. ": the README says " .. evidence
          .. ", the registry " .. entry.wire)
        calls[entry.name] = true
        local resource
        for name in methods:gmatch("`([%w_:]+)") do
          local r, m = name:match("^(%w+):([%w_]+)$")
          if r then resource = r else m = name end
          listed[resource .. ":" .. m] = true
        end
      end
    end
    -- every wrapped method of every resource, and every registry entry
    local wanted = {}
    local ls = assert(io.popen("cd " .. ROOT .. " && ls lua/dialoginsight/resources/*.lua"))
    for path in ls:lines() do
      local name = path:match("([%w_]+)%.lua$")
      if name ~= "base" and not name:match("^pager") then
        local mod = require("dialoginsight.resources." .. name)
        local class, prefix = mod, name
        if name == "tables" then class, prefix = getmetatable(mod.new({}, 1)).__index, "table" end
        for k, v in pairs(class) do
          if type(v) == "function" and k ~= "new" and not k:match("^__") then
            wanted[#wanted + 1] = prefix .. ":" .. k
          end
        end
      end
    end
    ls:close()
    table.sort(wanted)
    for _, m in ipairs(wanted) do assert.truthy(listed[m], "README.md's evidence table lacks " .. m) end
    for entry in registry:each() do
      assert.truthy(calls[entry.name], "README.md's evidence table lacks " .. entry.name)
    end
  end)

  it("README.md: make demo runs the use-case examples the quick start counts", function()
    local demo = slurp(ROOT .. "/scripts/demo")
    local loop = assert(demo:match("\nfor ex in (.-); do"), "scripts/demo has no `for ex in ...` loop")
    local scripts, n = {}, 0
    for item in loop:gmatch('"([^"]+)"') do scripts[item:match("^(%S+)")] = true end
    for item in loop:gsub('"[^"]+"', ""):gmatch("%S+") do scripts[item] = true end
    local readme = slurp(ROOT .. "/README.md")
    for script in pairs(scripts) do
      n = n + 1
      assert.truthy(readme:find("`examples/" .. script .. ".lua", 1, true),
        "README.md's examples table lacks examples/" .. script .. ".lua")
    end
    local words = { "one", "two", "three", "four", "five", "six", "seven", "eight", "nine" }
    local said = readme:match("runs the (%a+) use%-case examples")
    assert.truthy(said, "README.md's quick start does not say how many use-case examples make demo runs")
    assert.equal(words[n], said, "make demo runs " .. n .. " use-case examples")
  end)

  it("README.md is for users: at most 500 lines (internals are in docs/)", function()
    local n = select(2, slurp(ROOT .. "/README.md"):gsub("\n", ""))
    assert.truthy(n <= 500, "README.md has " .. n .. " lines")
  end)

  it("README.md: the quick start is marked, and merges its contact", function()
    local blocks = marked_blocks("README.md")
    local first = blocks[1]
    assert.truthy(first, "README.md has no runnable block")
    assert.equal("Quick start", first.section)
    assert.is_false(first.with_client, "the quick start must stand alone")
    local code, out, err = run(first)
    assert.equal(0, code, err)
    assert.truthy(out == "created\n" or out == "updated\n", "the quick start printed: " .. out .. err)
  end)
end)
