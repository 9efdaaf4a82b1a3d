-- The command line of bin/dialoginsight on argparse (issue 15): --version,
-- every option of a command in its --help and accepted by its parser, the
-- comparisons of export --where, values that start with "-", and the global
-- options before or after a command but never among a script's arguments.
local sbx = require "support.sandbox"
local H = require "support.host"
local q, slurp, spit, run = H.q, H.slurp, H.spit, H.run

-- What the README documents for each command (README.md, "The dialoginsight
-- host"); --help must list at least these.
local DOCUMENTED = {
  sync = { "--key-field", "--map", "--skip", "--batch-size", "--concurrency", "--rejects", "--dry-run",
           "--resume", "--restart", "--progress-interval" },
  export = { "--where", "--page-size" },
  probe = { "--writes", "--record" },
  run = {}, check = {}, fields = {}, call = {}, stats = {},
}

-- The options a --help lists, with the argument each takes (nil: a flag).
local function listed(help)
  local opts = {}
  for line in help:gmatch("[^\n]+") do
    local name, argname = line:match("^%s+(%-%-[%w%-]+) ?(%S*)")
    if name then opts[#opts + 1] = { name, argname ~= "" and argname or nil } end
  end
  return opts
end

-- The CSV columns of an export's output, as rows of cells.
local function rows_of(out)
  local rows = {}
  for line in out:gmatch("([^\r\n]*)\r\n") do
    local row = {}
    for cell in (line .. ","):gmatch("([^,]*),") do row[#row + 1] = cell end
    rows[#rows + 1] = row
  end
  return rows
end

describe("the command line (argparse)", function()
  setup(function() sbx.reset() end)

  it("--version names the library, its C core and libcurl, with no configuration", function()
    local clean = "env -u DI_KEY -u DI_KEY_ID -u DI_PROJECT -u DI_BASE_URL -u DI_CA_FILE "
    local r = run("--version", { env = clean })
    assert.are.equal(0, r.code, r.err)
    -- the rockspec's version, less its revision
    local ls = assert(io.popen("ls " .. q(H.ROOT) .. "/dialoginsight-*.rockspec"))
    local spec = slurp(ls:read("*l"))
    ls:close()
    local want = spec:match('\nversion = "([%d%.]+)%-%d+"')
    assert.truthy(want, "no version in the rockspec")
    assert.are.equal("dialoginsight " .. want, r.out:match("^[^\n]*"), r.out)
    assert.truthy(r.out:find("dialoginsight.core " .. want, 1, true), r.out)
    assert.truthy(r.out:find("libcurl/%d+%.%d+"), r.out)
    assert.truthy(r.out:find("Lua 5.4", 1, true), r.out)
    assert.are.equal("", r.err)
    -- after a command, too, as the other global options
    assert.are.equal(r.out, run("stats --version", { env = clean }).out)
  end)

  it("lists every option in its command's --help, and accepts each one it lists", function()
    for cmd, documented in pairs(DOCUMENTED) do
      local r = run(cmd .. " --help")
      assert.are.equal(0, r.code, cmd)
      local opts = listed(r.out)
      local seen = {}
      for _, o in ipairs(opts) do seen[o[1]] = true end
      for _, name in ipairs(documented) do
        assert.truthy(seen[name], cmd .. " --help does not list " .. name .. ":\n" .. r.out)
      end
      for _, o in ipairs(opts) do
        -- --help after the option: the parser must know it and its argument
        local a = o[2] and (o[1] .. "=" .. "x") or o[1]
        local parsed = run(cmd .. " " .. a .. " --help")
        assert.are.equal(0, parsed.code, cmd .. " " .. a .. ": " .. parsed.err)
      end
      assert.are.equal(r.out, run("help " .. cmd).out, "help " .. cmd)
    end
  end)

  it("suggests the option meant, and says where to look", function()
    local r = run("sync contacts x.csv --key-feild EMail")
    assert.are.equal(64, r.code)
    assert.truthy(r.err:find("unknown option '--key-feild'", 1, true), r.err)
    assert.truthy(r.err:find("did you mean '--key-field'?", 1, true), r.err)
    assert.truthy(r.err:find("see: dialoginsight sync --help", 1, true), r.err)
  end)

  it("export --where knows >= and <=, as > or = and < or =", function()
    local all = run("export contacts")
    assert.are.equal(0, all.code, all.err)
    local rows = rows_of(all.out)
    local col
    for i, h in ipairs(rows[1]) do if h == "Points" then col = i end end
    assert.truthy(col, "no Points column: " .. all.out)
    local function want(test)
      local ids = {}
      for i = 2, #rows do
        local p = tonumber(rows[i][col])
        if p and test(p) then ids[#ids + 1] = rows[i][1] end
      end
      return ids
    end
    for _, c in ipairs {
      { "Points>=120", function(p) return p >= 120 end },
      { "Points<=45", function(p) return p <= 45 end },
      { "Points>120", function(p) return p > 120 end },
      { "Points<45", function(p) return p < 45 end },
    } do
      local r = run("export contacts --where " .. q(c[1]))
      assert.are.equal(0, r.code, c[1] .. ": " .. r.err)
      local got = {}
      for i, row in ipairs(rows_of(r.out)) do if i > 1 then got[#got + 1] = row[1] end end
      local expected = want(c[2])
      assert.truthy(#expected > 0, c[1] .. " matches no contact of the sandbox")
      assert.are.same(expected, got, c[1])
    end
    -- no operator, or one that is not one
    for _, w in ipairs { "Points", "Points==5", "Points!5", "=5" } do
      local r = run("export contacts --where " .. q(w))
      assert.are.equal(64, r.code, w)
      assert.truthy(r.err:find("--where expects FIELD=VALUE (or !=, >, >=, <, <=)", 1, true), r.err)
    end
  end)

  it("gives an option the next argument as its value, whatever it starts with", function()
    local r = run("export contacts --page-size -5")
    assert.are.equal(64, r.code)
    assert.truthy(r.err:find("--page-size expects a positive whole number", 1, true), r.err)
    r = run("sync contacts x.csv --map -x=EMail --batch-size -1")
    assert.are.equal(64, r.code)
    assert.truthy(r.err:find("--batch-size must be 1..10000", 1, true), r.err)
  end)

  it("takes global options before or after the command, never among a script's own", function()
    local script = H.TMP .. "/args.lua"
    spit(script, "io.write(table.concat(arg, '|'), '\\n')\n")
    local conf = H.TMP .. "/cli.conf"
    spit(conf, "rate = 50\n")
    os.execute("chmod 600 " .. q(conf))
    for _, c in ipairs {
      { "run " .. q(script) .. " --trace --config " .. q(conf) .. " x", "--trace|--config|" .. conf .. "|x" },
      { q(script) .. " -- --trace -5", "--|--trace|-5" },
      { "--trace run " .. q(script) .. " --help", "--help" },
      { "run --config " .. q(conf) .. " " .. q(script) .. " a", "a" },
      { "run -- " .. q(script) .. " --config", "--config" },
    } do
      local r = run(c[1])
      assert.are.equal(0, r.code, c[1] .. ": " .. r.err)
      assert.are.equal(c[2] .. "\n", r.out, c[1])
    end
    -- the host traced only where --trace was its own
    assert.are.equal("", run("run " .. q(script) .. " --trace").err)
    assert.truthy(run("--trace run " .. q(script)).err == "", "a script that calls nothing traces nothing")
    local r = run("check --trace")
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.err:find("projects.List", 1, true), "--trace after the command: " .. r.err)
  end)
end)
