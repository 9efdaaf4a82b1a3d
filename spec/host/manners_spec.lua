-- The host's manners (issue 22, item 8), as a user meets them: - for stdin,
-- -q and -v, usage errors (stderr, exit 64, what was wrong), sync
-- --key-field, Ctrl-C once and twice (real signals, the sandbox slowed
-- down), and messages in the CLI's terms.  Real process, real sandbox.
local core = require "dialoginsight.core"
local sbx = require "support.sandbox"
local property = require "support.property"
local H = require "support.host"
local q, slurp, spit, run, spawn = H.q, H.slurp, H.spit, H.run, H.spawn
local contacts, csv_of, wait_for = H.contacts, H.csv_of, H.wait_for

-- Spawns args, presses Ctrl-C after a second, and checks that the press is said at
-- once (within 1 s, while the call in flight takes longer).
local function press_once(args, name)
  local h = spawn(args, name)
  os.execute("sleep 1")
  os.execute("kill -INT " .. h.pid)
  local err = wait_for(h.base .. ".err", "finishing 1 call in flight", 1)
  assert.truthy(err:find("finishing 1 call in flight (Ctrl-C again to stop now)", 1, true), err)
  return h
end

local function rc_of(h) return tonumber(slurp(h.base .. ".rc") or "") end

describe("CLI manners (issue 22)", function()
  local dir
  setup(function()
    sbx.reset()
    dir = H.TMP .. "/manners"
    os.execute("rm -rf " .. q(dir) .. " && mkdir -p " .. q(dir))
  end)
  after_each(function() sbx.clear_faults() end)

  describe("- is stdin", function()
    it("sync contacts - reads stdin; its outputs are stdin.* in the current directory", function()
      local r = run("sync contacts -", { stdin = csv_of(3, "pipe"), cwd = dir })
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.out:find("3 rows, 3 merged", 1, true), r.out)
      local have = contacts()
      for i = 1, 3 do assert.truthy(have["pipe" .. i .. "@example.com"], "pipe" .. i) end
      assert.truthy(slurp(dir .. "/stdin.di-journal"), "no stdin.di-journal in " .. dir)
      -- piped, too
      r = run("sync contacts - --restart", { pipe = "printf " .. q(csv_of(2, "piped")), cwd = dir })
      assert.are.equal(0, r.code, r.err)
      assert.truthy(contacts()["piped2@example.com"])
    end)

    it("refuses --resume with -, saying why, before reading anything", function()
      local mark = sbx.mark()
      local r = run("sync contacts - --resume", { stdin = csv_of(2, "never"), cwd = dir })
      assert.are.equal(64, r.code, r.err)
      assert.truthy(r.err:find("--resume cannot continue stdin (-)", 1, true), r.err)
      assert.truthy(r.err:find("save the input to a file", 1, true), r.err)
      assert.are.equal(0, #sbx.log(mark))
    end)

    it("run - and --config - read stdin; stdin is read once", function()
      local r = run("run -", { stdin = "print(client.project)\n" })
      assert.are.equal(0, r.code, r.err)
      assert.are.equal(sbx.env("DI_PROJECT") .. "\n", r.out)
      local conf = string.format("key_id = %s\nkey = %s\nproject = %s\nbase_url = %s\nca_file = %s\n",
        sbx.env("DI_KEY_ID"), sbx.env("DI_KEY"), sbx.env("DI_PROJECT"), sbx.env("DI_BASE_URL"),
        sbx.env("DI_CA_FILE"))
      local clean = "env -u DI_KEY -u DI_KEY_ID -u DI_BASE_URL -u DI_CA_FILE -u DI_PROJECT "
      r = run("--config - check", { stdin = conf, env = clean })
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.out:find("credentials: valid", 1, true), r.out)
      assert.falsy((r.out .. r.err):find(sbx.env("DI_KEY"), 1, true))
      r = run("--config - run -", { stdin = conf, env = clean })
      assert.are.equal(64, r.code, r.err)
      assert.truthy(r.err:find("stdin (-) can be read only once", 1, true), r.err)
    end)
  end)

  describe("-q and -v", function()
    it("are options of every command, in the help", function()
      local help = run("--help")
      for _, o in ipairs { "-q, --quiet", "-v, --verbose" } do
        assert.truthy(help.out:find(o, 1, true), o .. ":\n" .. help.out)
      end
      for _, cmd in ipairs { "run", "check", "fields", "call", "sync", "export", "stats", "probe" } do
        for _, o in ipairs { "-q", "--quiet", "-v", "--verbose" } do
          local r = run(cmd .. " " .. o .. " --help")
          assert.are.equal(0, r.code, cmd .. " " .. o .. ": " .. r.err)
          r = run(o .. " " .. cmd .. " --help")
          assert.are.equal(0, r.code, o .. " " .. cmd .. ": " .. r.err)
        end
      end
      local r = run("check -q -v")
      assert.are.equal(64, r.code)
      assert.truthy(r.err:find("-q and -v exclude each other", 1, true), r.err)
    end)

    it("-q: no progress and no notes, the summary stays", function()
      local path = dir .. "/quiet.csv"
      spit(path, csv_of(5, "quiet"))
      local loud = run("sync contacts " .. q(path))
      assert.are.equal(0, loud.code, loud.err)
      assert.truthy(loud.err:find("progress:", 1, true), "the control: " .. loud.err)
      local r = run("sync -q contacts " .. q(path) .. " --resume")
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.out:find("sync contacts " .. path .. ": 5 rows", 1, true), r.out)
      assert.are.equal("", r.err)
      r = run("sync contacts " .. q(path) .. " --quiet --restart")
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("", r.err)
      assert.truthy(r.out:find("5 rows, 5 merged", 1, true), r.out)
    end)

    it("-v: a line per call attempt, per retry and per rate-limit wait", function()
      sbx.faults { { type = "status", status = 503, method = "projects.List", next = 1 } }
      local r = run("check -v")
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.err:find("projects.List attempt 1: HTTP 503", 1, true), r.err)
      assert.truthy(r.err:find("projects.List retry in [%d.]+ s after attempt 1"), r.err)
      assert.truthy(r.err:find("projects.List attempt 2: HTTP 200", 1, true), r.err)
      -- (DI_RATE after H.ENV's: the last one wins)
      os.execute("mkdir -p " .. q(dir .. "/lim"))
      r = run("--verbose run -", { env = "DI_RATE=2 DI_BURST=1 DI_LIMITER_DIR=" .. q(dir .. "/lim") .. " ",
        stdin = "for _ = 1, 3 do assert(client.projects:list()) end\n" })
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.err:find("projects.List waits [%d.]+ s for the rate limit"), r.err)
    end)
  end)

  describe("usage errors", function()
    it("go to stderr with exit 64, saying what was wrong", function()
      for _, c in ipairs {
        { "", "usage: dialoginsight" },
        { "frobnicate", "unknown command 'frobnicate'" },
        { "-V", "unknown option '-V'" },
        { "check -x", "unknown option '-x'" },
        { "sync segments x.csv", "unknown resource 'segments'" },
        { "sync", "which resource?" },
        { "sync contacts", "expected one FILE.csv (or - for stdin), got 0 files" },
        { "sync contacts a.csv b.csv", "got 2 files" },
        { "sync contacts x.csv --batch-size 0", "--batch-size must be 1..10000" },
        { "sync contacts x.csv --key EMail", "--key-field FIELD" },
        { "stats abc", "'abc' is not a campaign id" },
        { "stats 0", "'0' is not a campaign id" },
        { "stats", "expected one CAMPAIGN_ID, got 0 arguments" },
        { "stats 1 2", "got 2 arguments" },
        { "call", "expected SERVICE METHOD [JSON|-], got 0 arguments" },
        { "call contacts", "got 1 argument" },
        { "call projects List '{\"a\":'", "the parameters are not a JSON object" },
        { "call projects List 5", "the parameters are not a JSON object" },
        { "sync contacts x.csv --progress-interval abc", "--progress-interval expects seconds" },
        { "sync contacts x.csv --rejects -", "--rejects -" },
        { "check x", "check takes no argument" },
        { "fields x", "fields takes no argument" },
        { "export people", "export contacts" },
        { "export contacts --page-size x", "--page-size expects a positive whole number" },
        { "run", "which script?" },
        { "help nope", "no command 'nope'" },
        { "--config", "requires an argument" },
        { "probe --record", "requires an argument" },
      } do
        local r = run(c[1])
        assert.are.equal(64, r.code, c[1] .. ": " .. r.err)
        assert.are.equal("", r.out, c[1])
        assert.truthy(r.err:find(c[2], 1, true), c[1] .. ": " .. r.err)
      end
    end)

    it("an unknown option is said as such, with the real ones it may be", function()
      local r = run("-V")
      assert.truthy(r.err:find("unknown option '-V'", 1, true), r.err)
      assert.falsy(r.err:find("'-h'", 1, true), r.err)
      assert.truthy(r.err:find("'--version'", 1, true), r.err)
      r = run("sync contacts x.csv --concurrrency 2")
      assert.truthy(r.err:find("did you mean '--concurrency'?", 1, true), r.err)
      r = run("check --zzzz")
      assert.truthy(r.err:find("unknown option '--zzzz'\n", 1, true), r.err)
    end)
  end)

  describe("sync --key-field", function()
    it("names the key field; --key is refused, naming --key-field, and a key-like value is never echoed", function()
      local path = dir .. "/kf.csv"
      spit(path, csv_of(2, "keyfield"))
      local r = run("sync contacts " .. q(path) .. " --key-field EMail")
      assert.are.equal(0, r.code, r.err)
      assert.truthy(contacts()["keyfield2@example.com"])
      local hex = "0123456789abcdef0123456789abcdef"
      for _, a in ipairs { "--key EMail", "--key=EMail", "--key " .. hex, "--key=" .. hex } do
        r = run("sync contacts " .. q(path) .. " " .. a)
        assert.are.equal(64, r.code, a)
        assert.truthy(r.err:find("--key-field FIELD", 1, true), a .. ": " .. r.err)
        assert.falsy((r.out .. r.err):find(hex, 1, true), a)
      end
      for _, a in ipairs { "--key-field " .. hex, "--key-field=" .. hex } do
        r = run("sync contacts " .. q(path) .. " " .. a)
        assert.are.equal(64, r.code, a)
        assert.truthy(r.err:find("never read from the command line", 1, true), r.err)
        assert.falsy((r.out .. r.err):find(hex, 1, true), a)
      end
      -- the key_field setting is the default
      r = run("sync contacts " .. q(path) .. " --restart", { env = "DI_KEY_FIELD=Nope " })
      assert.are.equal(1, r.code, r.err)
      assert.truthy(r.err:find("the key field Nope", 1, true), r.err)
    end)
  end)

  describe("Ctrl-C", function()
    it("once: says at once what it finishes; twice: stops now, summary, exit 130; --resume completes", function()
      local path = dir .. "/int.csv"
      local n = 2000
      spit(path, csv_of(n, "int"))
      sbx.faults { { type = "latency", ms = 3000, method = "contacts.Merge" } }
      local h = spawn("sync contacts " .. q(path) .. " --concurrency 3 --batch-size 50", "int2")
      -- wait for a first batch to be confirmed: the calls are in flight
      wait_for(path .. ".di-journal", "\nB %d+ %d+")
      os.execute("kill -INT " .. h.pid)
      local err = wait_for(h.base .. ".err", "in flight %(Ctrl%-C again to stop now%)", 2)
      local k = tonumber(err:match("finishing (%d+) calls? in flight %(Ctrl%-C again to stop now%)"))
      assert.truthy(k and k >= 1 and k <= 3, err)
      assert.falsy(rc_of(h), "still running: the calls are slow")
      local t0 = core.now()
      os.execute("kill -INT " .. h.pid)
      local rc, out
      rc, out, err = h.wait(10)
      assert.truthy(core.now() - t0 < 1.5, "stopped now, not after the 3 s calls")
      assert.are.equal(130, rc, out .. err)
      assert.falsy(err:find("traceback", 1, true), err)
      assert.truthy(out:find("sync contacts " .. path .. ": ", 1, true), out)
      assert.truthy(err:find("--resume", 1, true), err)
      local j = slurp(path .. ".di-journal")
      assert.falsy(j:find("\nE\n", 1, true), j)
      sbx.clear_faults()
      local r = run("sync contacts " .. q(path) .. " --resume")
      assert.are.equal(0, r.code, r.out .. r.err)
      assert.truthy(r.out:find(n .. " rows, " .. n .. " merged", 1, true), r.out)
      local have = contacts()
      for i = 1, n do assert.truthy(have["int" .. i .. "@example.com"], "int" .. i) end
    end)

    it("#property once or twice at any moment of a slowed sync: --resume merges every row, once", function()
      property.check("ctrl-c", { scenarios = 8, seconds = 25 }, function(rng, k)
        sbx.reset({ contacts = 0 })
        local n = rng:int(20, 300)
        local path = dir .. "/prop" .. k .. ".csv"
        os.remove(path .. ".di-journal")
        os.remove(path .. ".rejects.csv")
        local lines = { "EMail,FirstName" }
        for i = 1, n do lines[#lines + 1] = string.format("p%d.%d@example.com,F%d", k, i, i) end
        spit(path, table.concat(lines, "\n") .. "\n")
        sbx.faults { { type = "latency", ms = rng:int(200, 600), jitter_ms = rng:int(0, 200),
                       method = "contacts.Merge" } }
        local h = spawn("sync contacts " .. q(path) .. " --batch-size " .. rng:int(1, 30)
          .. " --concurrency " .. rng:int(1, 4), "prop")
        os.execute(string.format("sleep %.3f", 0.05 + rng:float() * 0.8))
        os.execute("kill -INT " .. h.pid .. " 2> /dev/null")
        -- (the second press mostly while the calls of the first are in flight)
        local twice = rng:chance(0.7)
        if twice then
          os.execute(string.format("sleep %.3f", rng:float() * 0.15))
          os.execute("kill -INT " .. h.pid .. " 2> /dev/null")
        end
        local rc, out, err = h.wait(30)
        local story = string.format("%d rows, Ctrl-C %s: exit %s", n, twice and "twice" or "once",
          tostring(rc))
        if err:find("traceback", 1, true) then return false, story .. ": a traceback\n" .. err end
        local complete = (slurp(path .. ".di-journal") or ""):find("\nE\n", 1, true) ~= nil
        if rc == 130 then
          if complete then return false, story .. " and a complete journal" end
          if not out:find("sync contacts " .. path .. ": ", 1, true) then
            return false, story .. " without the summary\n" .. out .. err
          end
          sbx.clear_faults()
          local r = run("sync contacts " .. q(path) .. " --resume")
          if r.code ~= 0 then return false, story .. "; --resume: exit " .. r.code .. "\n" .. r.err end
          if not r.out:find(n .. " rows, " .. n .. " merged", 1, true) then
            return false, story .. "; --resume: " .. r.out
          end
        elseif rc ~= 0 then
          return false, story .. "\n" .. err
        end
        local have = contacts()
        for i = 1, n do
          local c = have[string.format("p%d.%d@example.com", k, i)]
          if not (c and c.f_FirstName == "F" .. i) then
            return false, story .. ": row " .. i .. " not merged"
          end
        end
        return true
      end)
    end)

    it("probe: said at once; the table of the methods probed, exit 130", function()
      sbx.faults { { type = "latency", ms = 2000 } }
      local h = press_once("probe", "intprobe")
      local rc, out, err
      rc, out, err = h.wait(20)
      assert.are.equal(130, rc, out .. err)
      assert.truthy(out:find("probe of ", 1, true), out)
      assert.truthy(err:match("interrupted: %d+ methods? probed, the others not"), err)
      assert.falsy(err:find("traceback", 1, true), err)
    end)

    it("export and call: said at once, no traceback, exit 130", function()
      sbx.faults { { type = "latency", ms = 3000, method = "contacts.Get" } }
      local h = press_once("export contacts", "intexp")
      local rc, out, err
      rc, out, err = h.wait(20)
      assert.are.equal(130, rc, out .. err)
      assert.falsy(err:find("traceback", 1, true), err)
      assert.truthy(err:find("the file is incomplete", 1, true), err)
      -- twice: at once, though the call in flight takes 3 s
      h = press_once("export contacts", "intexp2")
      local t0 = core.now()
      os.execute("kill -INT " .. h.pid)
      rc, out, err = h.wait(20)
      assert.truthy(core.now() - t0 < 1, "export waited for the call in flight")
      assert.are.equal(130, rc, out .. err)
      assert.truthy(err:find("stopped (second Ctrl-C): the output is incomplete", 1, true), err)
      assert.falsy(err:find("traceback", 1, true), err)
      h = spawn("call contacts Get " .. q('{"Clause":{"$type":"FieldClause","Field":{"Name":"idContact"},'
        .. '"TypeOperator":"GreaterThan","ComparisonValue":0}}'), "intcall")
      os.execute("sleep 1")
      os.execute("kill -INT " .. h.pid)
      rc, out, err = h.wait(20)
      assert.are.equal(130, rc, out .. err)
      assert.falsy(err:find("traceback", 1, true), err)
      assert.truthy(err:find("interrupted (Ctrl-C)", 1, true), err)
    end)
  end)

  describe("messages in the caller's terms", function()
    it("tells a CLI user the variables and --config lines, not di.new{}", function()
      local r = run("check", { env = "env -u DI_CA_FILE " })
      assert.are.equal(1, r.code)
      assert.truthy(r.out:find("set DI_CA_FILE, or ca_file in a --config file", 1, true), r.out)
      assert.falsy((r.out .. r.err):find("di.new", 1, true), r.out)
      r = run("check", { env = "DI_CA_FILE=/nonexistent/ca.pem " })
      assert.are.equal(1, r.code)
      assert.truthy(r.err:find("setting 'ca_file' names a file that cannot be read", 1, true), r.err)
      assert.truthy(r.err:find("(ca_file: DI_CA_FILE, or a --config file line)", 1, true), r.err)
      r = run("fields", { env = "env -u DI_PROJECT " })
      assert.are.equal(1, r.code)
      assert.truthy(r.err:find("set DI_PROJECT, or project in a --config file", 1, true), r.err)
      assert.falsy(r.err:find("di.new", 1, true), r.err)
    end)

    it("names a failed preliminary read as such", function()
      local script = dir .. "/prelim.lua"
      spit(script, 'local r, err = client.contacts:merge{ EMail = "x@example.com" }\nprint(err)\n')
      local r = run("run " .. q(script), { env = "DI_KEY=sbx-00000000000000000000000000000000 " })
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.out:find("reading the project's fields (projects.Get) failed: auth InvalidAuthKey",
        1, true), r.out)
    end)

    it("a missing C core says to run make", function()
      local lua = "cd " .. q(dir) .. " && LUA_PATH=" .. q(H.ROOT .. "/lua/?.lua;" .. H.ROOT .. "/lua/?/init.lua")
        .. " LUA_CPATH=" .. q(dir .. "/none/?.so") .. " lua5.4 -e 'require \"dialoginsight\"' 2>&1"
      local p = assert(io.popen(lua))
      local text = p:read("a")
      p:close()
      assert.truthy(text:find("module 'dialoginsight.core' not found", 1, true), text)
      assert.truthy(text:find("run `make`", 1, true), text)
    end)

    it("counts in the singular when there is one", function()
      local path = dir .. "/one.csv"
      spit(path, csv_of(1, "one"))
      local r = run("sync contacts " .. q(path))
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.out:find(": 1 row, 1 merged", 1, true), r.out)
      r = run("sync contacts " .. q(path) .. " --resume")
      assert.truthy(r.err:find("resuming: 1 row was confirmed by earlier runs", 1, true), r.err)
      assert.truthy(r.out:find("(1 row done by earlier runs)", 1, true), r.out)
    end)
  end)
end)
