-- Hostile review of issue 22 item 8 (the CLI's manners), second pass: each
-- finding a failing spec.  Real process, real sandbox.
local sbx = require "support.sandbox"
local H = require "support.host"
local q, slurp, spit, run, spawn = H.q, H.slurp, H.spit, H.run, H.spawn
local contacts, csv_of, wait_for = H.contacts, H.csv_of, H.wait_for

describe("review 22b: the CLI's manners", function()
  local dir
  setup(function()
    sbx.reset()
    dir = H.TMP .. "/review22b"
    os.execute("rm -rf " .. q(dir) .. " && mkdir -p " .. q(dir))
  end)
  after_each(function() sbx.clear_faults() end)

  it("a CSV header's control characters never reach the terminal raw (escape injection)", function()
    -- an OSC sequence (set the window title) in the first column's name
    local r = run("sync contacts -", { cwd = dir,
      stdin = "\27]0;pwned\7Mail,FirstName\nx@example.com,A\n" })
    assert.are.equal(1, r.code, r.err)
    assert.truthy(r.err:find("pwned", 1, true), "the control: the column is named\n" .. r.err)
    assert.falsy(r.err:find("\27", 1, true), "ESC written raw to stderr:\n" .. r.err)
    assert.falsy(r.err:find("\7", 1, true), "BEL written raw to stderr:\n" .. r.err)
  end)

  it("the advice for a missing key column names --key-field, not the refused --key", function()
    local path = dir .. "/nokey.csv"
    spit(path, "Mail,FirstName\nx@example.com,A\n")
    local r = run("sync contacts " .. q(path))
    assert.are.equal(1, r.code, r.err)
    assert.truthy(r.err:find("no column holds the key field", 1, true), r.err)
    assert.truthy(r.err:find("--key-field FIELD", 1, true), r.err)
    -- following the advice as printed is a usage error
    assert.falsy(r.err:find("or --key FIELD", 1, true), r.err)
  end)

  it("the progress line counts in the singular when there is one row", function()
    local r = run("sync contacts -", { cwd = dir, stdin = csv_of(1, "prog1") })
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.err:find("progress:", 1, true), r.err)
    assert.falsy(r.err:find(" 1 rows", 1, true), r.err)
  end)

  it("sync contacts - names its input -, as typed, not /dev/stdin", function()
    local r = run("sync contacts - --restart", { cwd = dir, stdin = csv_of(2, "named") })
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("2 rows, 2 merged", 1, true), r.out)
    assert.falsy((r.out .. r.err):find("/dev/stdin", 1, true), r.out .. r.err)
  end)

  it("a second Ctrl-C on a stream never advises --resume, which a stream refuses", function()
    sbx.faults { { type = "latency", ms = 1500, method = "contacts.Merge" } }
    local path = dir .. "/stream.csv"
    spit(path, csv_of(400, "stream"))
    os.execute("mkdir -p " .. q(dir .. "/twice"))
    local h = spawn("sync contacts - --out-dir " .. q(dir .. "/twice") .. " --batch-size 10 --concurrency 2 < "
      .. q(path), "r22b_stream")
    os.execute("sleep 2")
    os.execute("kill -INT " .. h.pid)
    wait_for(h.base .. ".err", "in flight %(Ctrl%-C again to stop now%)", 3)
    os.execute("kill -INT " .. h.pid)
    local rc, out, err = h.wait(20)
    assert.are.equal(130, rc, out .. err)
    assert.truthy(err:find("a stream cannot be resumed", 1, true), err)
    -- the note on the second press says the opposite of the next line
    assert.falsy(err:find("--resume sends their rows again", 1, true), err)
  end)

  for _, sig in ipairs { "TERM", "HUP" } do
    it("SIG" .. sig .. " (kill, a closed terminal) stops as Ctrl-C does: summary, --resume hint", function()
      sbx.reset({ contacts = 0 })
      local n = 400
      local path = dir .. "/sig" .. sig .. ".csv"
      spit(path, csv_of(n, "sig" .. sig))
      sbx.faults { { type = "latency", ms = 1500, method = "contacts.Merge" } }
      local h = spawn("sync contacts " .. q(path) .. " --concurrency 3 --batch-size 20", "r22b_" .. sig)
      wait_for(path .. ".di-journal", "\nB %d+ %d+")
      os.execute("kill -" .. sig .. " " .. h.pid)
      local rc, out, err = h.wait(20)
      -- what holds already: nothing lost, --resume completes
      sbx.clear_faults()
      local r = run("sync contacts " .. q(path) .. " --resume")
      assert.are.equal(0, r.code, r.out .. r.err)
      local have = contacts()
      for i = 1, n do assert.truthy(have["sig" .. sig .. i .. "@example.com"], "row " .. i) end
      -- what does not: the signal kills it silently, as kill -9 would
      assert.truthy(out:find("sync contacts " .. path .. ": ", 1, true),
        "no summary on SIG" .. sig .. " (exit " .. tostring(rc) .. ")\n" .. out .. err)
      assert.truthy(err:find("--resume", 1, true), "no --resume hint on SIG" .. sig .. "\n" .. err)
    end)
  end

  it("--out-dir - is a usage error (exit 64), as --rejects - is", function()
    local path = dir .. "/od.csv"
    spit(path, csv_of(1, "od"))
    local r = run("sync contacts " .. q(path) .. " --out-dir -", { cwd = dir })
    assert.are.equal("", r.out)
    assert.are.equal(64, r.code, r.err)
  end)
  it("Ctrl-C during the project's fields read (before the first Merge): said at once, stopped with a message", function()
    local path = dir .. "/prelim.csv"
    spit(path, csv_of(5, "prelim"))
    sbx.faults { { type = "latency", ms = 4000, method = "projects.Get" } }
    local h = spawn("sync contacts " .. q(path), "r22b_prelim")
    os.execute("sleep 1")
    os.execute("kill -INT " .. h.pid)
    os.execute("sleep 0.7")
    local said = slurp(h.base .. ".err") or ""
    os.execute("kill -INT " .. h.pid)
    local rc, out, err = h.wait(20)
    assert.are.equal(130, rc, out .. err)
    -- the first press: nothing for as long as the call takes (up to its timeout)
    assert.truthy(said:find("Ctrl-C", 1, true), "nothing said 0.7 s after the first Ctrl-C: '" .. said .. "'")
    -- the second: killed by SIG_DFL, without a word
    assert.truthy(err:find("interrupted", 1, true) or err:find("stopped", 1, true),
      "the second Ctrl-C ended it silently: '" .. err .. "'")
  end)
  it("a config read twice (--config - and run /dev/stdin) never shows its API key in the script's syntax error", function()
    -- a 32-hex key that starts with a digit: Lua reads it as a malformed number
    local key = "0123456789abcdef0123456789abcdef"
    local conf = dir .. "/twice.conf"
    spit(conf, "key_id = 4201\nkey = " .. key .. "\nproject = 1001\n")
    os.execute("chmod 600 " .. q(conf))
    local clean = "env -u DI_KEY -u DI_KEY_ID "
    for _, a in ipairs { "--config - run /dev/stdin < " .. q(conf),
                         "--config /dev/stdin run - < " .. q(conf),
                         "--config " .. q(conf) .. " run " .. q(conf) } do
      local r = run(a, { env = clean })
      assert.are_not.equal(0, r.code, a)
      assert.falsy((r.out .. r.err):find(key, 1, true), a .. ": the key on stderr:\n" .. r.err)
    end
  end)
  it("a second sync contacts - in one directory never empties the rejects file of the first", function()
    local d = dir .. "/streams"
    os.execute("mkdir -p " .. q(d))
    local r = run("sync contacts -", { cwd = d,
      stdin = "EMail,FirstName\nbadjan1,A\nok.jan@example.com,B\nbadjan2,C\n" })
    assert.are.equal(2, r.code, r.err)
    local first = slurp(d .. "/stdin.rejects.csv") or ""
    assert.truthy(first:find("badjan2", 1, true), first)
    -- the next month's stream, in the same directory, no flag
    r = run("sync contacts -", { cwd = d, stdin = "EMail,FirstName\nok.feb@example.com,B\n" })
    -- either refused (the outputs of a finished run are there) or they are kept
    if r.code == 0 then
      local p = io.popen("cat " .. q(d) .. "/*rejects* 2> /dev/null")
      local now = p:read("a")
      p:close()
      assert.truthy(now:find("badjan1", 1, true) and now:find("badjan2", 1, true),
        "the first run's rejected rows are gone:\n" .. now)
    else
      -- refused as the other journal refusals are (exit 1), the first run's files kept
      assert.is_true(r.code == 64 or r.code == 1, r.err)
      assert.truthy(r.err:find("--restart", 1, true), r.err)
      local kept = slurp(d .. "/stdin.rejects.csv") or ""
      assert.truthy(kept:find("badjan1", 1, true) and kept:find("badjan2", 1, true), kept)
    end
  end)

  it("a file named stdin and - share stdin.rejects.csv: the file's rejects are lost", function()
    local d = dir .. "/named"
    os.execute("mkdir -p " .. q(d))
    spit(d .. "/stdin", "EMail,FirstName\nbadfile1,A\nok.file@example.com,B\n")
    local r = run("sync contacts stdin", { cwd = d })
    assert.are.equal(2, r.code, r.err)
    assert.truthy((slurp(d .. "/stdin.rejects.csv") or ""):find("badfile1", 1, true))
    r = run("sync contacts -", { cwd = d, stdin = "EMail,FirstName\nok.other@example.com,B\n" })
    local p = io.popen("cat " .. q(d) .. "/*rejects* 2> /dev/null")
    local now = p:read("a")
    p:close()
    assert.truthy(r.code == 64 or now:find("badfile1", 1, true),
      "exit " .. r.code .. "; the file's rejected row is in no rejects file:\n" .. now)
  end)
  it("an unknown long option is a usage error (exit 64), never a traceback", function()
    for _, a in ipairs { "check --zzzz", "sync contacts x.csv --concurrrency 2", "export contacts --out x.csv",
                         "export contacts --fields ''", "--verbos check" } do
      local r = run(a)
      assert.falsy(r.err:find("traceback", 1, true), a .. ":\n" .. r.err)
      assert.are.equal(64, r.code, a .. ": " .. r.err)
      assert.are.equal("", r.out, a)
      assert.truthy(r.err:find("unknown option '", 1, true), a .. ": " .. r.err)
    end
  end)
  it("the API key typed in capitals (or half of it) is not echoed, nor sent as a service name", function()
    local key = sbx.env("DI_KEY")
    local hex = key:match("%x+$")
    for _, v in ipairs { key:upper(), hex:upper(), hex:sub(1, 16) } do
      for _, a in ipairs { "help " .. v, "call " .. v .. " List", "--config " .. v .. " check",
                           "sync contacts " .. v } do
        local r = run(a)
        local said = (r.out .. r.err):lower()
        -- the server's "Unknown service or method: <key>.list" gives the key back, in lower case
        assert.falsy(said:find(hex:sub(1, 16), 1, true), a:gsub("%x%x%x%x%x%x%x%x+", "<KEY>") .. ":\n"
          .. (r.out .. r.err):gsub(hex, "<THE KEY>"))
      end
    end
  end)
  it("call with the key's hex in capitals as the service: the server's answer gives back the exact key", function()
    local key = sbx.env("DI_KEY")
    local hex = key:match("%x+$")
    local mark = sbx.mark()
    local r = run("call " .. hex:upper() .. " List")
    -- sent to the service, in the URL
    assert.are.equal(0, #sbx.log(mark), "the key (in capitals) went to the service as a service name")
    assert.falsy((r.out .. r.err):find(hex, 1, true), "the exact key on stderr:\n" .. r.err)
  end)
end)
