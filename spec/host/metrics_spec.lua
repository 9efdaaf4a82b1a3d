-- Issue 25 in the host: `--metrics FILE` on every command (cli/textfile.lua), a
-- node_exporter textfile replaced whole, never seen half-written by a reader that
-- loops during a sync; `--log-format json`.  (The host's own modules: Lua 5.4.)
local sbx = require "support.sandbox"
local host = require "support.host"
local metrics = require "dialoginsight.metrics"

local function promtool(path)
  local out, ok = sbx.sh("promtool check metrics < " .. host.q(path))
  return ok, out
end

-- The value of one series in a textfile's text, or nil.
local function sample(text, series)
  local v = text:match("\n" .. series:gsub("[%p]", "%%%0") .. " (%S+)")
  return tonumber(v)
end

describe("--metrics FILE", function()
  local dir = host.TMP .. "/metrics"
  before_each(function()
    sbx.reset()
    os.execute("rm -rf " .. host.q(dir) .. " && mkdir -p " .. host.q(dir .. "/snaps"))
  end)

  it("is replaced whole during a sync: a reader looping on it never sees half of it", function()
    local csv = dir .. "/in.csv"
    host.spit(csv, host.csv_of(1500, "metrics"))
    local prom = dir .. "/di.prom"
    local mark = sbx.mark()
    -- about 3 s of calls (15 Merge calls at 5/s), the file rewritten every 0.05 s
    local h = host.spawn("sync contacts " .. host.q(csv) .. " --batch-size 100 --metrics " .. host.q(prom)
      .. " -q", "metrics-sync", "DI_RATE=5 DI_BURST=1 DI_METRICS_EVERY=0.05 ")
    -- the reader: copies the file as fast as it can until the sync ends (bounded)
    local reader = string.format("i=0; while [ $i -lt 3000 ] && kill -0 %d 2>/dev/null; do "
      .. "cat %s > %s/snaps/$i 2>/dev/null; i=$((i+1)); done; echo $i", h.pid, host.q(prom), host.q(dir))
    local copies = tonumber((sbx.sh(reader)):match("%d+"))
    local rc, _, err = h.wait(60)
    assert.equal(0, rc, err)
    local distinct, seen, read = 0, {}, 0
    local families = #metrics.FAMILIES
    for i = 0, copies - 1 do
      local text = host.slurp(dir .. "/snaps/" .. i) or ""
      if text ~= "" then -- (before the first write)
        read = read + 1
        local _, types = text:gsub("\n# TYPE ", "")
        if text:sub(1, 7) == "# TYPE " then types = types + 1 end
        assert.equal("\n", text:sub(-1), "copy " .. i .. " ends mid-line")
        assert.equal(families, types, "copy " .. i .. " lacks families")
        if not seen[text] then
          seen[text] = true
          distinct = distinct + 1
          local path = dir .. "/snaps/" .. i
          local ok, out = promtool(path)
          assert.is_true(ok, "copy " .. i .. ": " .. out)
        end
      end
    end
    print(string.format("\n  --metrics during a 1,500-row sync: %d reads, %d distinct texts, none partial",
      read, distinct))
    assert.is_true(distinct >= 5, "the file was not rewritten during the run (" .. distinct .. " texts)")
    local text = assert(host.slurp(prom))
    assert.is_true((promtool(prom)))
    assert.equal(1500, sample(text, 'dialoginsight_sync_rows_total{outcome="created"}'))
    local merges = 0
    for _, e in ipairs(sbx.log(mark)) do
      if e.method:lower() == "merge" then merges = merges + 1 end
    end
    assert.equal(15, merges)
    assert.equal(merges, sample(text, 'dialoginsight_calls_total{service="contacts",method="Merge",outcome="ok"}'))
    assert.is_nil(text:find(sbx.env("DI_KEY"), 1, true))
    -- readable by node_exporter's user; no temporary file left behind
    assert.equal("644", (sbx.sh("stat -c %a " .. host.q(prom))):match("%d+"))
    assert.equal("", (sbx.sh("ls -A " .. host.q(dir) .. " | grep tmp || true")))
  end)

  it("is taken by every command, and written at its end however it ends", function()
    local prom = dir .. "/check.prom"
    local r = host.run("check --metrics " .. host.q(prom))
    assert.equal(0, r.code, r.err)
    local text = host.slurp(prom)
    assert.equal(1, sample(text, 'dialoginsight_calls_total{service="projects",method="List",outcome="ok"}'))
    -- a failing command writes it too
    prom = dir .. "/fail.prom"
    r = host.run("--metrics " .. host.q(prom) .. " call projects NoSuchMethod")
    assert.not_equal(0, r.code)
    assert.truthy(host.slurp(prom), "no textfile after a failed command")
    -- a command without a client
    prom = dir .. "/help.prom"
    -- (nothing listens on port 9: the send fails, the textfile is still written)
    host.run("webhooks send contact.unsubscribed --to http://127.0.0.1:9/ --metrics " .. host.q(prom),
      { env = "DI_WEBHOOK_SECRET=s " })
    assert.truthy(host.slurp(prom), "no textfile from a command without a client")
  end)

  it("refuses a path it cannot write before any work, as a usage error", function()
    local r = host.run("check --metrics /nonexistent-dir/m.prom")
    assert.equal(64, r.code)
    assert.truthy(r.err:find("no such directory /nonexistent-dir", 1, true), r.err)
    r = host.run("check --metrics " .. host.q(dir))
    assert.equal(64, r.code)
    assert.truthy(r.err:find("is a directory", 1, true), r.err)
    r = host.run("check --metrics " .. host.q(dir .. "/m.prom"), { env = "DI_METRICS_EVERY=0 " })
    assert.equal(64, r.code)
    assert.truthy(r.err:find("DI_METRICS_EVERY", 1, true), r.err)
    -- a symbolic link at the path is not followed: the file it names stays as it was (a
    -- file of the spec's own: a broken writer must not damage anything of the system's)
    host.spit(dir .. "/victim", "untouched\n")
    os.execute("ln -s " .. host.q(dir .. "/victim") .. " " .. host.q(dir .. "/link.prom"))
    r = host.run("check --metrics " .. host.q(dir .. "/link.prom"))
    assert.truthy(r.err:find("symbolic link", 1, true), r.err)
    assert.equal("untouched\n", host.slurp(dir .. "/victim"))
  end)
end)

describe("--log-format json", function()
  before_each(function() sbx.reset() end) -- (the sandbox first: without it, how to start it)

  it("makes every -v line a JSON object, the key in none", function()
    local r = host.run("--log-format json -v check")
    assert.equal(0, r.code, r.err)
    local n = 0
    for line in r.err:gmatch("[^\n]+") do
      local ev = assert(require("dialoginsight.core").decode(line), "not JSON: " .. line)
      assert.is_string(ev.event)
      assert.is_nil(line:find(sbx.env("DI_KEY"), 1, true))
      n = n + 1
    end
    assert.is_true(n >= 1)
    r = host.run("check", { env = "DI_LOG_FORMAT=json DI_TRACE=1 " })
    assert.equal(0, r.code, r.err)
  end)

  it("refuses a format it does not know", function()
    local r = host.run("--log-format yaml check")
    assert.equal(64, r.code)
    assert.truthy(r.err:find("--log-format must be text or json", 1, true), r.err)
    r = host.run("check", { env = "DI_LOG_FORMAT=xml " })
    assert.equal(64, r.code)
    assert.truthy(r.err:find("DI_LOG_FORMAT must be text or json", 1, true), r.err)
  end)
end)
