-- The bundled host, bin/dialoginsight, driven as a user would: every command,
-- the configuration, sync (CSV edge cases, 20,000 rows, kill -9 and Ctrl-C
-- then --resume), against the sandbox (the examples: examples_spec.lua).  Checks go through
-- the sandbox's control API, never through the library.
local sbx = require "support.sandbox"
local cjson = require "cjson"

local H = require "support.host"
local ROOT, TMP = H.ROOT, H.TMP
local q, slurp, spit, run, spawn = H.q, H.slurp, H.spit, H.run, H.spawn

local function count_lines(path, prefix)
  local n = 0
  for line in io.lines(path) do
    if line:sub(1, #prefix) == prefix then n = n + 1 end
  end
  return n
end

local function wait_for_batches(journal, n)
  for _ = 1, 300 do
    local s = slurp(journal)
    if s and count_lines(journal, "B ") >= n then return end
    os.execute("sleep 0.05")
  end
  error("the sync confirmed no batch in time")
end

local contacts = H.contacts

local function gen(path, rows, bad_every)
  assert(os.execute(string.format("lua5.4 %s/examples/gen_contacts.lua %d %d > %s",
    q(ROOT), rows, bad_every or 0, q(path))))
end

-- What gen_contacts.lua writes, parsed here independently of the host's CSV
-- reader: its only quoted fields are "Name, Jr." ones.
local function expected(path)
  local good, bad, lineno = {}, {}, 0
  for line in io.lines(path) do
    lineno = lineno + 1
    if lineno > 1 then
      local f = {}
      local rest = line:gsub('"([^"]*)"', function(s) return (s:gsub(",", "\1")) end)
      for v in (rest .. ","):gmatch("([^,]*),") do f[#f + 1] = (v:gsub("\1", ",")) end
      local e, first, last, city, birth, points, nl = table.unpack(f)
      local ok = e ~= "" and tonumber(points) and #last <= 100 and not birth:match("02%-30$")
      if ok then
        good[e] = { f_FirstName = first, f_LastName = last, f_City = city,
          f_BirthDate = birth:gsub("%-", "."), f_Points = tonumber(points),
          optin_Newsletter = nl == "1" }
      else
        bad[#bad + 1] = lineno
      end
    end
  end
  return good, bad
end

-- base: the contacts the sandbox held before (its reset seeds a few).
local function same_contacts(good, base)
  local have = contacts()
  local n = 0
  for e in pairs(have) do if not base[e] then n = n + 1 end end
  local want = 0
  for e, c in pairs(good) do
    want = want + 1
    local h = have[e]
    assert(h, "missing contact " .. e)
    for k, v in pairs(c) do
      if h[k] ~= v then
        error(string.format("%s: %s is %s, expected %s", e, k, tostring(h[k]), tostring(v)))
      end
    end
  end
  assert.are.equal(want, n)
end

-- The data lines (di_line) of a rejects file, sorted.
local function reject_lines(path)
  local r = run("run " .. q(TMP .. "/lines.lua") .. " " .. q(path))
  assert.are.equal(0, r.code, r.err)
  local list = {}
  for n in r.out:gmatch("%d+") do list[#list + 1] = tonumber(n) end
  return list
end

local function merged_records(since)
  local sum, calls = 0, 0
  for _, e in ipairs(sbx.log(since)) do
    if tostring(e.method):lower() == "merge" and tostring(e.service):lower() == "contacts" then
      sum, calls = sum + (e.records or 0), calls + 1
    end
  end
  return sum, calls
end

describe("dialoginsight host", function()
  setup(function()
    -- a helper script, run by the host itself, listing di_line of a rejects file
    spit(TMP .. "/lines.lua", [[
      local core = require "dialoginsight.core"
      local r = assert(core.csv_open(arg[1]))
      local h = assert(r:header())
      local out = {}
      while true do
        local row, a, line, bad = r:next()
        if row == nil then break end
        row = row or bad
        out[#out + 1] = row[#row - 1] -- the last two columns: di_line, di_reason
      end
      table.sort(out, function(x, y) return tonumber(x) < tonumber(y) end)
      print(table.concat(out, " "))
    ]])
  end)

  before_each(function()
    sbx.reset({ contacts = 0 })
  end)

  teardown(function()
    sbx.clear_faults()
    os.execute("rm -rf " .. q(TMP))
  end)

  describe("help and usage", function()
    it("prints the help for the program and every command", function()
      local r = run("--help")
      assert.are.equal(0, r.code)
      assert.truthy(r.out:find("usage: dialoginsight", 1, true))
      for _, cmd in ipairs { "run", "check", "fields", "call", "sync", "export", "stats" } do
        r = run(cmd .. " --help")
        assert.are.equal(0, r.code, cmd)
        assert.truthy(r.out:find("usage: dialoginsight " .. cmd, 1, true), cmd)
      end
    end)

    it("exits 64 on bad usage", function()
      assert.are.equal(64, run("").code)
      assert.are.equal(64, run("frobnicate").code)
      assert.are.equal(64, run("sync contacts").code)
      assert.are.equal(64, run("check --bogus").code)
    end)
  end)

  describe("configuration", function()
    it("says which setting is missing", function()
      local r = run("check", { env = "DI_KEY= " })
      assert.are.equal(1, r.code)
      assert.truthy(r.err:find("'key' is missing", 1, true), r.err)
    end)

    it("refuses a bad key id", function()
      local r = run("check", { env = "DI_KEY_ID=abc " })
      assert.are.equal(1, r.code)
      assert.truthy(r.err:find("key_id", 1, true), r.err)
    end)

    it("refuses the key on the command line", function()
      for _, a in ipairs { "--key-secret=abc", "--api-key abc", "--secret abc", "--password=x" } do
        local r = run("check " .. a)
        assert.are.equal(64, r.code, a)
        assert.truthy(r.err:find("never read from the command line", 1, true), r.err)
      end
    end)

    it("reads a config file, and warns when others may read it", function()
      local path = TMP .. "/di.conf"
      spit(path, string.format("# sandbox\nkey_id = %s\nkey = \"%s\"\nproject = %s\n"
        .. "base_url = %s\nca_file = %s\n", sbx.env("DI_KEY_ID"), sbx.env("DI_KEY"),
        sbx.env("DI_PROJECT"), sbx.env("DI_BASE_URL"), sbx.env("DI_CA_FILE")))
      local clean = "env -u DI_KEY -u DI_KEY_ID -u DI_BASE_URL -u DI_CA_FILE -u DI_PROJECT "
      os.execute("chmod 600 " .. q(path))
      local r = run("--config " .. q(path) .. " check", { env = clean })
      assert.are.equal(0, r.code, r.err)
      assert.falsy(r.err:find("warning", 1, true))
      os.execute("chmod 644 " .. q(path))
      r = run("check --config " .. q(path), { env = clean })
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.err:find("readable by group or others", 1, true), r.err)
      spit(path, "tiemout = 3\n")
      r = run("--config " .. q(path) .. " check", { env = clean })
      assert.are.equal(1, r.code)
      assert.truthy(r.err:find("unknown setting 'tiemout'", 1, true), r.err)
    end)

    it("loads the README's config-file example as written, # comments and all", function()
      local readme = slurp(H.ROOT .. "/README.md")
      local example = readme:match("### Configuration.-```ini\n(.-)```")
      assert.truthy(example, "README.md has no ```ini example under ### Configuration")
      assert.truthy(example:find("%S%s+#"), "the example has no inline comment: " .. example)
      local path = TMP .. "/readme.conf"
      spit(path, example)
      os.execute("chmod 600 " .. q(path))
      local show = TMP .. "/show.lua"
      spit(show, "print(client.base_url, client.key_id, client.project, client.settings.rate, "
        .. "client.settings.user_agent)\n")
      local clean = "env -u DI_KEY -u DI_KEY_ID -u DI_BASE_URL -u DI_CA_FILE -u DI_PROJECT "
        .. "-u DI_RATE DI_LIMITER_DIR=" .. q(TMP) .. " "
      local r = run("--config " .. q(path) .. " run " .. q(show), { env = clean })
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("https://app.dialoginsight.com/webservices/ofc4/\t12\t3456\t10\t"
        .. "dialoginsight-lua/0.1\n", r.out)
      -- quoted values keep their #, bare ones keep a # that follows no space
      spit(path, example .. "user_agent = \"app #1\"   # quoted\n")
      r = run("--config " .. q(path) .. " run " .. q(show), { env = clean })
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.out:find("\tapp #1\n", 1, true), r.out)
      spit(path, example .. "user_agent = app#1 # bare\n")
      r = run("--config " .. q(path) .. " run " .. q(show), { env = clean })
      assert.truthy(r.out:find("\tapp#1\n", 1, true), r.out)
      -- what cannot be read is refused with its line, never its value
      for _, line in ipairs { 'key = "never closed # x', 'key = "a" b', "key = # only a comment",
                              "rate = 10 apples" } do
        spit(path, "key_id = 12\n" .. line .. "\n")
        r = run("--config " .. q(path) .. " run " .. q(show), { env = clean })
        assert.are.equal(1, r.code, line)
        assert.truthy(r.err:find(path .. ":2: ", 1, true), r.err)
        assert.falsy(r.err:find("never closed", 1, true), r.err)
      end
    end)

    it("keeps the key out of every output, journal and rejects file with --trace", function()
      local key = sbx.env("DI_KEY")
      local csv = TMP .. "/trace.csv"
      spit(csv, "EMail,Points\nann@example.com,3\nbob@example.com,many\n")
      os.remove(csv .. ".di-journal")
      local outputs = {}
      for _, a in ipairs { "check", "fields", "call projects List", "stats 1",
                           "sync contacts " .. q(csv), "export contacts --where City=Paris" } do
        local r = run("--trace " .. a)
        outputs[#outputs + 1] = r.out .. r.err
        if a == "check" then assert.truthy(r.err:find("projects.List", 1, true), r.err) end
      end
      outputs[#outputs + 1] = slurp(csv .. ".di-journal")
      outputs[#outputs + 1] = slurp(csv .. ".rejects.csv")
      local bad = run("--trace check", { env = "DI_KEY=wrong-key-123456 " })
      outputs[#outputs + 1] = bad.out .. bad.err
      for _, text in ipairs(outputs) do
        assert.falsy(text:find(key, 1, true))
      end
      assert.falsy((bad.out .. bad.err):find("wrong-key-123456", 1, true))
    end)
  end)

  describe("commands", function()
    it("check: valid credentials and the projects", function()
      local r = run("check")
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.out:find("credentials: valid", 1, true))
      assert.truthy(r.out:find("* " .. sbx.env("DI_PROJECT"), 1, true), r.out)
      r = run("check", { env = "DI_KEY=not-the-key " })
      assert.are.equal(1, r.code)
      assert.truthy(r.out:find("refused", 1, true), r.out)
    end)

    it("fields: the fields and opt-ins as a table", function()
      local r = run("fields")
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.out:find("FirstName%s+f_FirstName%s+Text"), r.out)
      assert.truthy(r.out:find("EMail%s+f_EMail%s+Text%s+yes%s+key"), r.out)
      assert.truthy(r.out:find("Newsletter%s+optin_Newsletter"), r.out)
    end)

    it("call: pretty JSON with sorted keys, parameters from argv or stdin", function()
      local r = run("call projects List")
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.out:find('"Records": [\n    {\n      "ProjectName": "Sandbox project",\n'
        .. '      "idProject": ' .. sbx.env("DI_PROJECT"), 1, true), r.out)
      assert.falsy(r.out:find("Trace", 1, true))
      local params = cjson.encode { Records = { { ID = { key_f_EMail = "cli@example.com" },
        Data = { f_FirstName = "Cli" } } } }
      r = run("call contacts Merge " .. q(params))
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.out:find('"CreatedRecords": 1', 1, true), r.out)
      r = run("call contacts Merge -", { stdin = params })
      assert.truthy(r.out:find('"UpdatedRecords": 1', 1, true), r.out)
      -- (issue 22: a bad argument is bad usage, refused before any call)
      r = run("call contacts Merge '{not json'")
      assert.are.equal(64, r.code)
      r = run("call contacts Merge -", { stdin = "{not json" })
      assert.are.equal(1, r.code)
      r = run("call 'bad name' List")
      assert.are.equal(1, r.code)
    end)

    it("run: a script gets arg, ... and a ready client; errors show a traceback", function()
      local s = TMP .. "/s.lua"
      spit(s, "local a = ...\nprint(arg[0] ~= nil, arg[1], a, #arg, "
        .. "client.projects:list()[1].idProject)\nreturn 7\n")
      local r = run("run " .. q(s) .. " one two")
      assert.are.equal(7, r.code, r.err)
      assert.are.equal("true\tone\tone\t2\t" .. sbx.env("DI_PROJECT") .. "\n", r.out)
      r = run(q(s) .. " x")
      assert.are.equal(7, r.code)
      spit(s, "local function f() error('boom') end\nf()\n")
      r = run("run " .. q(s))
      assert.are.equal(1, r.code)
      assert.truthy(r.err:find("boom", 1, true))
      assert.truthy(r.err:find("stack traceback", 1, true), r.err)
    end)

    it("works from any directory, with no LUA_PATH", function()
      local r = run("check", { cwd = "/", env = "env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 " })
      assert.are.equal(0, r.code, r.err)
    end)

    it("export: contacts as CSV through paging, with --where", function()
      sbx.reset({ contacts = 1200 })
      local held = 0
      for _ in pairs(contacts()) do held = held + 1 end
      assert.truthy(held >= 1200)
      local r = run("export contacts --page-size 250")
      assert.are.equal(0, r.code, r.err)
      local n = select(2, r.out:gsub("\r\n", ""))
      assert.are.equal(held + 1, n)
      assert.truthy(r.out:match("^idContact,EMail,FirstName"))
      local mark = sbx.mark()
      r = run("export contacts --where City=Paris")
      assert.are.equal(0, r.code, r.err)
      for line in r.out:gmatch("[^\r\n]+") do
        if not line:match("^idContact") then assert.truthy(line:find(",Paris,", 1, true), line) end
      end
      assert.truthy(#sbx.log(mark) >= 1)
    end)

    it("stats: counts and rates of a campaign", function()
      local s = TMP .. "/camp.lua"
      spit(s, [[
        local m = assert(client.messages:create{ name = "S", subject = "S",
          sender_email = "n@example.com", sender_name = "N", html = "<p>x</p>" })
        print(assert(client.campaigns:create{ name = "Spring é", message = m }))
      ]])
      local r = run("run " .. q(s))
      assert.are.equal(0, r.code, r.err)
      local id = r.out:match("%d+")
      r = run("stats " .. id)
      assert.are.equal(0, r.code, r.err)
      -- the campaign's name, from the statistics' Name [assumed]
      assert.truthy(r.out:find("campaign " .. id .. ": Spring é\n", 1, true), r.out)
      assert.truthy(r.out:find("Sent", 1, true))
      assert.truthy(r.out:find("open rate", 1, true), r.out)
      assert.are.equal(64, run("stats abc").code)
    end)
  end)

  describe("sync: CSV edge cases", function()
    local function sync(name, content, extra)
      local path = TMP .. "/" .. name
      spit(path, content)
      os.remove(path .. ".di-journal")
      return run("sync contacts " .. q(path) .. " " .. (extra or "")), path
    end

    it("quotes, doubled quotes, embedded newlines, BOM, ';' and CRLF", function()
      local r = sync("edge.csv", "\239\187\191EMail;FirstName;City\r\n"
        .. "q1@example.com;\"Ann \"\"The Hammer\"\"\";\"Paris; France\"\r\n"
        .. "q2@example.com;\"Two\r\nLines\";Oslo\r\n"
        .. "\r\n"
        .. "q3@example.com;Plain;\r\n")
      assert.are.equal(0, r.code, r.out .. r.err)
      local c = contacts()
      assert.are.equal('Ann "The Hammer"', c["q1@example.com"].f_FirstName)
      assert.are.equal("Paris; France", c["q1@example.com"].f_City)
      assert.are.equal("Two\r\nLines", c["q2@example.com"].f_FirstName)
      assert.are.equal("Plain", c["q3@example.com"].f_FirstName)
    end)

    it("ragged rows and an unterminated quote are rejected with their line", function()
      local r, path = sync("ragged.csv", "EMail,FirstName\n"
        .. "r1@example.com,One\n"
        .. "r2@example.com,Two,extra\n"
        .. "r3@example.com\n"
        .. "r4@example.com,Four\n"
        .. "r5@example.com,\"never closed\nr6@example.com,Six\n")
      assert.are.equal(2, r.code, r.out .. r.err)
      local c = contacts()
      -- r6 is a row of its own, not the end of r5's runaway quote
      assert.truthy(c["r1@example.com"] and c["r4@example.com"] and c["r6@example.com"])
      assert.falsy(c["r2@example.com"] or c["r3@example.com"] or c["r5@example.com"])
      local rej = slurp(path .. ".rejects.csv")
      assert.truthy(rej:find(',3,"has 3 fields, the header has 2"', 1, true), rej)
      assert.truthy(rej:find(',4,"has 1 fields, the header has 2"', 1, true), rej)
      assert.truthy(rej:find('r5@example.com,never closed,6,"unterminated quote', 1, true), rej)
      assert.are.same({ 3, 4, 6 }, reject_lines(path .. ".rejects.csv"))
    end)

    it("an empty file is an error; a header alone syncs nothing", function()
      local r = sync("empty.csv", "")
      assert.are.equal(1, r.code)
      assert.truthy(r.err:find("empty", 1, true), r.err)
      r = sync("header.csv", "EMail,FirstName\r\n")
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.out:find("0 rows", 1, true), r.out)
    end)

    it("maps columns, opt-ins and refuses unknown ones", function()
      local r, path = sync("map.csv", "mail,Prenom,Newsletter,optin_Promotions,note\n"
        .. "m1@example.com,Ann,1,0,x\n", "--map mail=EMail --map Prenom=FirstName --skip note")
      assert.are.equal(0, r.code, r.out .. r.err)
      local c = contacts()["m1@example.com"]
      assert.are.equal("Ann", c.f_FirstName)
      assert.are.equal(true, c.optin_Newsletter)
      assert.are.equal(false, c.optin_Promotions)
      r = sync("unknown.csv", "EMail,FristName\nx@example.com,Ann\n")
      assert.are.equal(1, r.code)
      assert.truthy(r.err:find("did you mean 'FirstName'", 1, true), r.err)
      assert.falsy(contacts()["x@example.com"])
      assert.truthy(path)
    end)
  end)

  describe("sync: a 20,000-row file with 1 % bad rows", function()
    it("merges exactly the good rows and rejects exactly the bad ones", function()
      local path = TMP .. "/c20k.csv"
      gen(path, 20000, 100)
      local good, bad = expected(path)
      local base = contacts()
      local mark = sbx.mark()
      local r = run("sync contacts " .. q(path))
      assert.are.equal(2, r.code, r.out .. r.err)
      assert.truthy(r.out:find("20000 rows, 19800 merged (19800 created, 0 updated), 200 rejected",
        1, true), r.out)
      same_contacts(good, base)
      assert.are.same(bad, reject_lines(path .. ".rejects.csv"))
      local sent, calls = merged_records(mark)
      assert.are.equal(19800, sent)
      assert.are.equal(198, calls)
      -- a second run updates and rejects the same rows
      r = run("sync contacts " .. q(path))
      assert.are.equal(2, r.code)
      assert.truthy(r.out:find("19800 merged (0 created, 19800 updated)", 1, true), r.out)
    end)

    it("--dry-run sends nothing", function()
      local path = TMP .. "/dry.csv"
      gen(path, 2000, 100)
      local mark = sbx.mark()
      local r = run("sync contacts " .. q(path) .. " --dry-run")
      assert.are.equal(2, r.code)
      assert.truthy(r.out:find("1980 valid, 20 rejected", 1, true), r.out)
      assert.are.equal(0, (merged_records(mark)))
    end)
  end)

  describe("sync: interruptions", function()
    local function slow()
      sbx.faults { { type = "latency", ms = 150, method = "contacts.Merge" } }
    end

    after_each(function() sbx.clear_faults() end)

    it("kill -9 then --resume: nothing lost, only unconfirmed batches sent again", function()
      local path = TMP .. "/kill.csv"
      gen(path, 5000, 50)
      local good = expected(path)
      local base = contacts()
      os.remove(path .. ".di-journal")
      slow()
      local h = spawn("sync contacts " .. q(path) .. " --concurrency 2", "kill")
      wait_for_batches(path .. ".di-journal", 5)
      os.execute("kill -9 " .. h.pid)
      h.wait()
      sbx.clear_faults()
      -- what the journal confirmed, and what the resumed run must send
      local confirmed, covered = {}, 0
      for line in io.lines(path .. ".di-journal") do
        local a, b = line:match("^B (%d+) (%d+)")
        if a then
          confirmed[#confirmed + 1] = { tonumber(a), tonumber(b) }
          covered = covered + tonumber(b) - tonumber(a) + 1
        end
      end
      assert.truthy(covered > 0 and covered < 5000)
      local r = run("sync contacts " .. q(path))
      assert.are.equal(1, r.code)
      assert.truthy(r.err:find("--resume", 1, true), r.err)
      local mark = sbx.mark()
      r = run("sync contacts " .. q(path) .. " --resume")
      assert.are.equal(2, r.code, r.out .. r.err)
      same_contacts(good, base)
      local bad_total = 5000 // 50
      assert.truthy(r.out:find("5000 rows, " .. (5000 - bad_total) .. " merged", 1, true), r.out)
      -- valid rows outside the confirmed ranges: every 50th row is bad
      local outside = 0
      for i = 1, 5000 do
        local inside = false
        for _, c in ipairs(confirmed) do if i >= c[1] and i <= c[2] then inside = true end end
        if not inside and i % 50 ~= 0 then outside = outside + 1 end
      end
      assert.are.equal(outside, (merged_records(mark)))
      -- every bad row exactly once in the rejects file
      local _, bad = expected(path)
      assert.are.same(bad, reject_lines(path .. ".rejects.csv"))
    end)

    it("Ctrl-C: finishes the calls in flight, writes the checkpoint, exits 130; resume completes", function()
      local path = TMP .. "/int.csv"
      gen(path, 5000, 0)
      local good = expected(path)
      local base = contacts()
      os.remove(path .. ".di-journal")
      slow()
      local mark0 = sbx.mark()
      local h = spawn("sync contacts " .. q(path) .. " --concurrency 2", "int")
      wait_for_batches(path .. ".di-journal", 3)
      os.execute("kill -INT " .. h.pid)
      local rc, out, err = h.wait()
      assert.are.equal(130, rc, out .. err)
      assert.truthy(err:find("--resume", 1, true), err)
      local j = slurp(path .. ".di-journal")
      assert.falsy(j:find("\nE\n", 1, true))
      -- every call that was sent got its answer and its journal line
      local sent = merged_records(mark0)
      local covered = 0
      for a, b in j:gmatch("\nB (%d+) (%d+)") do covered = covered + tonumber(b) - tonumber(a) + 1 end
      assert.are.equal(sent, covered)
      sbx.clear_faults()
      local r = run("sync contacts " .. q(path) .. " --resume")
      assert.are.equal(0, r.code, r.out .. r.err)
      same_contacts(good, base)
    end)
  end)

  -- the examples: spec/host/examples_spec.lua
end)
