-- The limit shared by a fleet of hosts through Redis (limiter/redis.lua):
-- real OS processes, each with its own limiter_dir (standing for a host),
-- against a real redis-server started on a free loopback port without
-- persistence (scripts/redis), and the sandbox's request log counting what
-- went out.  spec/nginx/redis_spec.lua adds nginx workers to the fleet.
local di = require "dialoginsight"
local core = require "dialoginsight.core"
local sbx = require "support.sandbox"

local LUA = require("support.runtime").lua
local ROOT = assert(io.popen("pwd")):read("*l")

local function sh(cmd) return sbx.sh(cmd) end

local function redis(cmd)
  local out, ok = sh("DI_REDIS_DIR=" .. ROOT .. "/build/redis-spec " .. ROOT .. "/scripts/redis " .. cmd)
  assert(ok, "scripts/redis " .. cmd .. ": " .. out)
  return out
end

local function tmpdir() return (sh("mktemp -d"):gsub("%s+$", "")) end

-- Starts n workers (limiter_worker.lua) together; returns each one's call
-- times (a list per worker), and the window's start.
local function workers(n, secs, rate, burst, url, hosts, during)
  local start = core.now() + 0.8
  local files, procs = {}, {}
  for i = 1, n do
    files[i] = os.tmpname()
    procs[i] = io.popen(string.format("%s spec/support/limiter_worker.lua %.6f %.6f %s %s %q %q %s 2>%q.err > %q",
      LUA, start, start + secs, rate, burst, tmpdir(), url or "", hosts or 1, files[i], files[i]))
  end
  if during then during(start) end
  local per = {}
  for i = 1, n do
    assert(procs[i]:close(), "worker " .. i .. " failed: " .. (io.open(files[i] .. ".err"):read("*a")))
    per[i] = {}
    for line in io.lines(files[i]) do per[i][#per[i] + 1] = tonumber(line) - start end
    per[i].err = io.open(files[i] .. ".err"):read("*a")
  end
  return per
end

local function count(per, from, to)
  local n = 0
  for _, list in ipairs(per) do
    for _, t in ipairs(list) do if t >= from and t < to then n = n + 1 end end
  end
  return n
end

describe("limit shared through Redis", function()
  local url
  setup(function()
    url = redis("start"):match("DI_REDIS_URL=(%S+)")
    sbx.reset()
  end)
  teardown(function() pcall(redis, "stop") end)

  it("holds three hosts to 10 calls/s together (burst 1, 5 s), where each alone would take 10/s", function()
    local mark = sbx.mark()
    local per = workers(3, 5, 10, 1, url)
    local n = count(per, 0, 5)
    local logged = #sbx.log(mark)
    print(string.format("\n  3 hosts through Redis, 10/s burst 1, 5 s: %d calls (sandbox log %d)", n, logged))
    assert.equal(n, logged)
    assert.is_true(n <= 10 * 5 + 1 + 10, n .. " calls: more than rate x seconds + burst + 1 s of slack")
    assert.is_true(n >= 45, n .. " calls: the shared limit let too few through")
    for i = 1, 3 do assert.is_true(#per[i] > 0, "host " .. i .. " made no call") end
    -- without Redis, the same three hosts take about three times that
    local alone = count(workers(3, 2, 10, 1, nil), 0, 2)
    print(string.format("  the same three hosts without Redis, 2 s: %d calls", alone))
    assert.is_true(alone >= 50, alone .. " calls without Redis")
  end)

  it("falls back to each host's own limit when Redis dies, and shares again when it is back", function()
    local per = workers(3, 10, 10, 1, url, 1, function(start)
      core.sleep(start + 2 - core.now())
      redis("stop")
      core.sleep(start + 4.5 - core.now())
      redis("start")
    end)
    local shared, alone, again = count(per, 0.2, 2), count(per, 2.5, 4.5), count(per, 8, 10)
    print(string.format("\n  calls/s: shared %.1f, Redis down %.1f, Redis back %.1f",
      shared / 1.8, alone / 2, again / 2))
    assert.is_true(shared <= 1.8 * 10 + 2, "shared: " .. shared)
    assert.is_true(alone >= 2 * 25, "each host kept its own 10/s while Redis was down: " .. alone)
    assert.is_true(again <= 2 * 10 + 3, "sharing resumed within the retry interval: " .. again)
    for i, list in ipairs(per) do
      -- (while the limit is shared, GCRA promises the total, not each
      -- host's turn; with its own limit each host calls every 0.1 s, and
      -- losing Redis must not hold a call up: no gap from the kill on)
      for j = 2, #list do
        if list[j - 1] >= 1.9 and list[j] <= 4.5 then
          assert.is_true(list[j] - list[j - 1] < 0.5, "worker " .. i .. " waited "
          .. (list[j] - list[j - 1]) .. " s between two calls, at " .. list[j - 1])
        end
      end
      assert.truthy(list.err:find("limiting this host alone", 1, true), list.err)
      assert.truthy(list.err:find("Redis is back", 1, true), list.err)
    end
  end)

  it("gives clear errors or a fallback for bad URLs, never showing a password", function()
    local function client(u)
      return di.new(sbx.settings { limiter_url = u, limiter_dir = tmpdir(), rate = 5, burst = 1 })
    end
    for _, bad in ipairs { "http://x:1", "redis://:s3cretpass@", "redis://host:99999", "garbage" } do
      local ok, err = pcall(client, bad)
      assert.is_false(ok, bad)
      assert.truthy(tostring(err):find("setting 'limiter_url'", 1, true), tostring(err))
      assert.is_nil(tostring(err):find("s3cretpass", 1, true))
    end
    -- wrong password, unreachable port: calls go on under the local limit, with a warning
    local port = url:match(":(%d+)$")
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
local di = require "dialoginsight"
local sbx = require "support.sandbox"
for _, u in ipairs { arg[1], arg[2] } do
  local c = di.new(sbx.settings { limiter_url = u, limiter_dir = arg[3], rate = 50, burst = 1 })
  assert(c:call("projects", "List", {}))
  assert(not tostring(c):find("s3cretpass", 1, true))
end
print("ok")
]])
    f:close()
    local free = sh(ROOT .. "/scripts/free-port"):match("%d+")
    -- (io.popen, not sh: under check-asan the child needs the preloaded runtime)
    local p = assert(io.popen(string.format("%s %s %q %q %q 2>&1", LUA, script,
      "redis://:s3cretpass@127.0.0.1:" .. port, "redis://127.0.0.1:" .. free, tmpdir())))
    local out = p:read("*a")
    p:close()
    os.remove(script)
    assert.truthy(out:find("ok", 1, true), out)
    assert.truthy(out:find("Redis refused the limiter", 1, true), out)
    assert.truthy(out:find("Redis is unreachable", 1, true), out)
    assert.is_nil(out:find("s3cretpass", 1, true), out)
  end)
end)

-- Issue 21, class 10: through Redis too, every spelling of a host shares
-- one limit (limiter/host.lua names the key).
describe("limit shared through Redis, one per API host", function()
  local url
  setup(function() url = redis("start"):match("DI_REDIS_URL=(%S+)") end)
  teardown(function() pcall(redis, "stop") end)

  it("holds localhost, LOCALHOST., :443 and no port to one limit", function()
    local limiter = require "dialoginsight.limiter"
    -- (a budget no busy machine misses: this is about the key, not timing;
    -- a fallback would take a slot of its own)
    local rmod = require "dialoginsight.limiter.redis"
    local budget = rmod.TIMEOUT
    rmod.TIMEOUT = 2
    finally(function() rmod.TIMEOUT = budget end)
    local function open(base)
      -- each with a limiter_dir of its own: as if on another host, so only
      -- Redis can join them
      return assert(limiter.open(di.config.resolve(sbx.settings { base_url = base,
        limiter_dir = tmpdir(), limiter_url = url, rate = 1, burst = 1 })))
    end
    local a = open("https://spell.example/x/")
    assert.equal(0, a:acquire())
    for _, u in ipairs { "https://SPELL.example/x/", "https://spell.example:443/x/",
                         "https://Spell.Example.:443/y/" } do
      assert.is_true(open(u):acquire() > 0.5, u .. " took a slot of its own")
    end
    assert.equal(0, open("https://spell.example:8443/x/"):acquire(), "another port is another limit")
  end)
end)

-- rev2: the script reset any state further ahead than the CALLING process's
-- own bound (its max_retry_after): a batch job (max_retry_after 120) told
-- to wait 100 s had its penalty erased by the next web process (the default
-- 30 s), and calls went out during the service's penalty.  The local backend
-- keeps the largest lead any sharer declared; so does Redis now (the lead
-- is stored beside the state), up to what any settings can declare.
describe("limit shared through Redis, sharers of different max_retry_after", function()
  local url
  local rmod = require "dialoginsight.limiter.redis"
  local budget
  setup(function()
    url = redis("start"):match("DI_REDIS_URL=(%S+)")
    -- (a budget no busy machine misses: this is about the state, not timing)
    budget, rmod.TIMEOUT = rmod.TIMEOUT, 2
  end)
  teardown(function() rmod.TIMEOUT = budget; pcall(redis, "stop") end)

  local function base(n) return "https://lead" .. n .. ".example/x/" end

  it("keeps a penalty that a sharer with a larger max_retry_after set", function()
    local batch = di.new(sbx.settings { base_url = base(1), limiter_url = url, limiter_dir = tmpdir(),
      retries = { max_retry_after = 120 } })
    local web = di.new(sbx.settings { base_url = base(1), limiter_url = url, limiter_dir = tmpdir() })
    batch.limiter:penalize(100)
    assert.is_true(batch.limiter:acquire() > 90)
    -- the web sharer is told its own bound at most (30 s + 1 s + a slot) and
    -- asks again after it: held, never let through
    local w = web.limiter:acquire()
    assert.is_true(w > 25 and w <= 31.2, "the web sharer was told " .. w .. " s")
    assert.is_true(batch.limiter:acquire() > 90, "the penalty was erased for everyone")
    assert.is_true(web.limiter:acquire() > 25)
  end)

  it("(the local backend holds the same case)", function()
    local dir = tmpdir()
    local batch = di.new(sbx.settings { base_url = base(2), limiter_dir = dir, retries = { max_retry_after = 120 } })
    local web = di.new(sbx.settings { base_url = base(2), limiter_dir = dir })
    batch.limiter:penalize(100)
    assert.is_true(web.limiter:acquire() > 60)
    assert.is_true(batch.limiter:acquire() > 90)
  end)

  it("still resets a state further ahead than any sharer can declare, with a warning", function()
    local c = assert(core.redis_connect { host = "127.0.0.1", port = tonumber(url:match(":(%d+)$")), timeout = 2 })
    local t = assert(c:command(2, "TIME"))
    local now = tonumber(t[1]) * 1e6 + tonumber(t[2])
    local key = rmod.key(base(3), sbx.settings().key_id)
    local lead = core.limiter_bounds.max_lead
    -- a state two hours ahead, and a lead claimed far beyond what settings allow
    assert.equal("OK", c:command(2, "SET", key, string.format("%.0f", now + 7200e6), "PX", "600000"))
    assert.equal("OK", c:command(2, "SET", key .. ":lead", string.format("%.0f", 1e12), "PX", "600000"))
    local log = require "dialoginsight.log"
    local said, orig = {}, log.warn
    log.warn = function(m) said[#said + 1] = m end
    local web = di.new(sbx.settings { base_url = base(3), limiter_url = url, limiter_dir = tmpdir() })
    local w = web.limiter:acquire()
    log.warn = orig
    assert.equal(0, w)
    assert.truthy(table.concat(said, "\n"):find("started afresh", 1, true), table.concat(said, "\n"))
    -- one within the largest lead (an hour's penalty of a sharer allowed
    -- one) is honoured, and the lead is kept beside it
    assert.equal("OK", c:command(2, "SET", key, string.format("%.0f", now + (lead - 200) * 1e6), "PX", "600000"))
    assert.equal("OK", c:command(2, "SET", key .. ":lead", string.format("%.0f", lead * 1e6), "PX", "600000"))
    assert.is_true(web.limiter:acquire() > 25)
    c:close()
  end)
end)

-- rev2: hiredis's connect does not bound the name lookup: with
-- limiter_url=redis://redis.slowdns.example:6379, deadline 1 and a silent
-- name server, each call took 20 s (and again after every 5 s retry), in
-- plain Lua and in bin/dialoginsight.  Run as the reviewer did, in private
-- namespaces (unshare: mount and network; needs root, as make test runs):
-- /etc/resolv.conf bind-mounted onto a name server that never answers on the
-- namespace's own loopback, so nothing outside them changes.
describe("a Redis host whose name does not resolve", function()
  it("costs a call the connect's budget, not the resolver's timeouts (plain Lua and the host)", function()
    local dir = tmpdir()
    local f = assert(io.open(dir .. "/t.lua", "w"))
    f:write([[
local core = require "dialoginsight.core"
local t0 = core.now()
local c, why = core.redis_connect { host = "redis.slowdns.example", port = 6379, timeout = 0.05 }
print(string.format("connect\t%s\t%.3f\t%s", tostring(c), core.now() - t0, why))
local di = require "dialoginsight"
local client = di.new { env = false, key_id = 1, key = "k", project = 1, base_url = "https://127.0.0.1:1/x/",
  limiter_url = "redis://redis.slowdns.example:6379", limiter_dir = arg[1], deadline = 1, retries = 0 }
for i = 1, 2 do
  t0 = core.now()
  local _, e = client:call("projects", "List", {})
  print(string.format("call\t%d\t%s\t%.3f", i, e and e.kind, core.now() - t0))
end
]])
    f:close()
    f = assert(io.open(dir .. "/conf", "w"))
    f:write("key_id = 1\nproject = 1\nbase_url = https://127.0.0.1:1/x/\nlimiter_url = redis://redis.slowdns.example:6379\n"
      .. "limiter_dir = " .. dir .. "\ndeadline = 1\n")
    f:close()
    f = assert(io.open(dir .. "/ns.sh", "w"))
    f:write(string.format([[
set -e
ip link set lo up
lua5.4 -e 'local s = require("socket").udp(); assert(s:setsockname("127.0.0.1", 53)); require("socket").sleep(60)' &
DNS=$!
trap 'kill $DNS' EXIT
echo "nameserver 127.0.0.1" > %s/resolv.conf
mount --bind %s/resolv.conf /etc/resolv.conf
sleep 0.3
# (the name server is silent: getent waits for the resolver's own timeouts)
timeout 1 getent hosts redis.slowdns.example && echo "RESOLVED" || true
%s %s/t.lua %s
s=$(date +%%s.%%N)
DI_KEY=k timeout 60 %s/bin/dialoginsight --config %s/conf call projects List >/dev/null 2>%s/host.err || true
echo "host $(echo "$(date +%%s.%%N) - $s" | bc)"
]], dir, dir, LUA, dir, dir, ROOT, dir, dir))
    f:close()
    local before = sh("md5sum /etc/resolv.conf")
    local out, ok = sh("timeout 120 unshare -mn sh " .. dir .. "/ns.sh 2>&1")
    print("\n" .. out)
    assert.is_true(ok, out)
    assert.equal(before, sh("md5sum /etc/resolv.conf"), "the machine's resolv.conf changed")
    assert.falsy(out:find("RESOLVED", 1, true), "the name resolved: the set-up is wrong")
    local took, why = out:match("connect\tnil\t([%d.]+)\t([^\n]*)")
    assert.truthy(took, out)
    assert.is_true(tonumber(took) < 0.3, "redis_connect took " .. took .. " s")
    assert.truthy(why:find("did not resolve in time", 1, true), why)
    for i = 1, 2 do
      local kind, secs = out:match("call\t" .. i .. "\t(%S+)\t([%d.]+)")
      assert.truthy(secs, out)
      assert.is_true(tonumber(secs) < 1.5, "call " .. i .. " took " .. secs .. " s (deadline 1)")
      assert.equal("network", kind) -- (the API's port is closed: refused at once)
    end
    local host = tonumber(out:match("host ([%d.]+)"))
    assert.is_true(host and host < 3, "bin/dialoginsight took " .. tostring(host) .. " s: "
      .. tostring(io.open(dir .. "/host.err"):read("*a")))
    assert.truthy(io.open(dir .. "/host.err"):read("*a"):find("did not resolve in time", 1, true))
    sh("rm -rf " .. dir)
  end)
end)
