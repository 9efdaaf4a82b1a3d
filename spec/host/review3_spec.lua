-- Hostile review 3 (of the review-22 fixes): each finding a failing spec.
-- Real process, real sandbox.
local sbx = require "support.sandbox"
local H = require "support.host"
local q, slurp, spit, run = H.q, H.slurp, H.spit, H.run

-- Every rejects file of directory d, concatenated.
local function all_rejects(d)
  local p = io.popen("cat " .. q(d) .. "/*rejects* 2> /dev/null")
  local s = p:read("*a")
  p:close()
  return s
end

describe("review 3: the stream's rejects refusal (cli/sync/journal.lua)", function()
  local dir
  setup(function()
    sbx.reset()
    dir = H.TMP .. "/review3"
    os.execute("rm -rf " .. q(dir) .. " && mkdir -p " .. q(dir))
  end)
  after_each(function() sbx.clear_faults() end)

  -- A first stream with two rejected rows, in its own directory d.
  local function first_stream(d)
    os.execute("rm -rf " .. q(d) .. " && mkdir -p " .. q(d))
    local r = run("sync contacts -", { cwd = d,
      stdin = "EMail,FirstName\nbadjan1,A\nok.jan@example.com,B\nbadjan2,C\n" })
    assert.are.equal(2, r.code, r.out .. r.err)
    local first = slurp(d .. "/stdin.rejects.csv") or ""
    assert.truthy(first:find("badjan1", 1, true) and first:find("badjan2", 1, true), first)
  end

  it("a dry run of the next stream never empties the rejects file of the first", function()
    local d = dir .. "/dry"
    first_stream(d)
    -- checking next month's export before sending it
    local r = run("sync contacts - --dry-run", { cwd = d,
      stdin = "EMail,FirstName\nok.feb@example.com,B\n" })
    local now = all_rejects(d)
    assert.truthy(r.code ~= 0 or (now:find("badjan1", 1, true) and now:find("badjan2", 1, true)),
      "exit " .. r.code .. "; the first run's rejected rows are gone:\n" .. now)
  end)

  it("a stream after a complete journal of an older version (DIJ2) never empties its rejects file", function()
    local d = dir .. "/dij2"
    first_stream(d)
    -- the same outputs, as the version before DIJ3 left them (its journal's
    -- counts are not read: j.rejected stays 0)
    spit(d .. "/stdin.di-journal", "DIJ2 key=EMail\nB 1 3 0 1 2 0 120 0123456789abcdef 0\nE\n")
    local r = run("sync contacts -", { cwd = d, stdin = "EMail,FirstName\nok.feb@example.com,B\n" })
    local now = all_rejects(d)
    assert.truthy(r.code ~= 0 or (now:find("badjan1", 1, true) and now:find("badjan2", 1, true)),
      "exit " .. r.code .. "; the first run's rejected rows are gone:\n" .. now)
  end)

  it("a file named stdin after a stream never empties the stream's rejects file", function()
    local d = dir .. "/named_after"
    first_stream(d)
    spit(d .. "/stdin", "EMail,FirstName\nok.file@example.com,B\n")
    local r = run("sync contacts stdin", { cwd = d })
    local now = all_rejects(d)
    assert.truthy(r.code ~= 0 or (now:find("badjan1", 1, true) and now:find("badjan2", 1, true)),
      "exit " .. r.code .. "; the stream's rejected rows are gone:\n" .. now)
  end)

  it("an unfinished stream's refusal never advises only --restart, which empties its rejects", function()
    local d = dir .. "/unfinished"
    first_stream(d)
    -- as a Ctrl-C before the end leaves it: no E line
    local j = slurp(d .. "/stdin.di-journal")
    spit(d .. "/stdin.di-journal", (j:gsub("E\n$", "")))
    local r = run("sync contacts -", { cwd = d, stdin = "EMail,FirstName\nok.feb@example.com,B\n" })
    assert.are.equal(1, r.code, r.err)
    -- the advice as printed: --restart alone, which empties the rejects
    -- file of the earlier stream (another input: nothing makes them again);
    -- the complete journal's refusal names them and --out-dir
    local advice = r.err
    r = run("sync contacts - --restart", { cwd = d, stdin = "EMail,FirstName\nok.feb@example.com,B\n" })
    local now = all_rejects(d)
    assert.truthy((advice:find("rejected row", 1, true) and advice:find("--out-dir", 1, true))
      or (now:find("badjan1", 1, true) and now:find("badjan2", 1, true)),
      "the refusal:\n" .. advice .. "\n"
        .. "and following it (--restart, exit " .. r.code .. ") emptied the first run's rejects:\n" .. now)
  end)
end)

describe("review 3: signals (src/host/di_host.c)", function()
  local dir
  setup(function()
    sbx.env("DI_KEY") -- the host reads its key from the sandbox's env
    dir = H.TMP .. "/review3sig"
    os.execute("rm -rf " .. q(dir) .. " && mkdir -p " .. q(dir))
  end)

  it("a job started under nohup (SIGHUP ignored) keeps running when the terminal hangs up", function()
    local script = dir .. "/hup.lua"
    spit(script, "local t = os.time()\nwhile os.time() - t < 2 do end\nprint('done')\n")
    -- nohup sets SIGHUP to SIG_IGN and execs the host: the host must keep it ignored
    local h = H.spawn("run " .. q(script), "r3_nohup", "nohup ")
    os.execute("sleep 0.5")
    os.execute("kill -HUP " .. h.pid)
    local code, out, err = h.wait(20)
    assert.are.equal(0, code, "a hangup stopped a nohup job: exit " .. code .. "\n" .. err)
    assert.truthy(out:find("done", 1, true), out)
  end)
end)

describe("review 3: terminal controls in messages (commands.cli_terms)", function()
  local dir
  setup(function()
    sbx.env("DI_KEY")
    dir = H.TMP .. "/review3term"
    os.execute("rm -rf " .. q(dir) .. " && mkdir -p " .. q(dir))
  end)

  it("a column name's C1 controls (U+009B, CSI in UTF-8) never reach stderr raw", function()
    local r = run("sync contacts -", { cwd = dir,
      stdin = "\194\15531mRED\194\1552J,EMail\n1,x@example.com\n" })
    assert.are.equal(1, r.code, r.err)
    assert.truthy(r.err:find("RED", 1, true), "the control: the column is named\n" .. r.err)
    assert.falsy(r.err:find("\194\155", 1, true), "C1 CSI written raw to stderr")
  end)

  it("a column name's newline never forges a line of the tool's own", function()
    local r = run("sync contacts -", { cwd = dir,
      stdin = '"Zip\ndialoginsight: sync: done, 1 row merged",EMail\n1,x@example.com\n' })
    assert.are.equal(1, r.code, r.err)
    assert.falsy(r.err:find("\ndialoginsight: sync: done", 1, true), "a forged line:\n" .. r.err)
  end)
end)
