--- The benchmark driver (run through bench/run, which starts the servers
-- and sets the environment).  Runs every scenario, alternating contenders
-- round by round (A B C A B C ...), takes medians, prints one table and
-- writes it to bench/results/latest.md (or, with --smoke, runs each
-- scenario once with tiny counts, writes $BENCH_DIR/smoke.md, and fails
-- unless every figure is a positive number).
local ROOT = assert(os.getenv("BENCH_ROOT"))
local BENCH_DIR = assert(os.getenv("BENCH_DIR"))
local smoke = arg[1] == "--smoke"
-- BENCH_ONLY=4,5 runs those scenarios alone (a quick look while working;
-- the table then has only their sections, and results/latest.md is not written)
local ONLY = os.getenv("BENCH_ONLY")
local function wanted(n) return not ONLY or ("," .. ONLY .. ","):find("," .. n .. ",", 1, true) ~= nil end

local ROUNDS = smoke and 1 or 5
local WRK_SECS = 1                      -- wrk takes whole seconds
local MANY_CALLS = smoke and 400 or 20000
local SYNC_ROWS = smoke and 2000 or 100000
local DRY_ROWS = smoke and 20000 or 1000000
local JSON_ROUNDS = smoke and 1 or 9     -- cheap, and in-process timings are short
local LIMITER_CALLS = smoke and 2000 or 200000
local FLOOR_CALLS = smoke and 80 or 1000

local cjson = require "cjson"

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs a shell command; returns its stdout, or raises with its output.
local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  if not ok then
    error(string.format("bench: command failed (%s):\n  %s\n%s", tostring(code), cmd, out), 0)
  end
  return out
end

local function env_prefix(vars)
  local parts = {}
  for k, v in pairs(vars) do parts[#parts + 1] = k .. "=" .. sh_quote(v) end
  table.sort(parts)
  return table.concat(parts, " ")
end

local function median(xs)
  local t = {}
  for i, x in ipairs(xs) do t[i] = x end
  table.sort(t)
  local n = #t
  if n == 0 then return 0 / 0 end
  if n % 2 == 1 then return t[(n + 1) / 2] end
  return (t[n / 2] + t[n / 2 + 1]) / 2
end

local function parse_line(out)
  local calls, wall, cpu = out:match("calls=(%d+) wall=([%d.]+) cpu=([%d.]+)")
  if not calls then error("bench: no result line in:\n" .. out, 0) end
  return tonumber(calls), tonumber(wall), tonumber(cpu)
end

-- /usr/bin/time's format: wall, user, system (s), peak RSS (kB).
local TIME = "/usr/bin/time -f 'TIME %e %U %S %M' "
local function parse_time(out)
  local e, u, s, m = out:match("TIME ([%d.]+) ([%d.]+) ([%d.]+) (%d+)")
  if not e then error("bench: no /usr/bin/time line in:\n" .. out, 0) end
  return tonumber(e), tonumber(u) + tonumber(s), tonumber(m)
end

local E = setmetatable({}, { __index = function(_, k)
  local v = os.getenv(k)
  if not v then error("bench: " .. k .. " is not set", 0) end
  return v
end })

local LUA_PATH = ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;"
local function lua_env(rt, extra)
  local vars = { LUA_PATH = LUA_PATH, LUA_CPATH = ROOT .. "/build/" .. rt .. "/?.so;;" }
  for k, v in pairs(extra or {}) do vars[k] = v end
  return env_prefix(vars)
end

-- Scenario 1 ---------------------------------------------------------------

-- The request body our client sends for the single-record Merge, for wrk.
-- The request body our client sends for the single-record Merge: wrk's
-- (bench/seq/merge.wrk.lua reads it from BENCH_BODY_FILE, set by bench/run).
local function write_wrk_body()
  run(lua_env("lua5.4", { OUT = E.BENCH_BODY_FILE, BENCH_URL = "unused" }) .. " lua5.4 -e " .. sh_quote([[
    package.path = os.getenv("BENCH_ROOT") .. "/bench/seq/?.lua;" .. package.path
    local core = require "dialoginsight.core"
    local p = require("common").params()
    p.AuthKey = { idKey = tonumber(os.getenv("BENCH_KEY_ID")), Key = os.getenv("BENCH_KEY") }
    p.idProject = tonumber(os.getenv("BENCH_PROJECT"))
    local f = assert(io.open(os.getenv("OUT"), "wb"))
    f:write(assert(core.encode(p)))
    f:close()]]))
end

local function seq_contenders()
  local seq = ROOT .. "/bench/seq/"
  local function script(cmd)
    return function(url)
      return parse_line(run(env_prefix { BENCH_URL = url } .. " " .. cmd))
    end
  end
  local function wrk(conns)
    return function(url)
      local out = run(TIME .. "wrk -t1 -c" .. conns .. " -d" .. WRK_SECS .. "s -s "
        .. sh_quote(seq .. "merge.wrk.lua") .. " " .. sh_quote(url .. "contacts.ashx?method=Merge"))
      local requests = tonumber(out:match("wrk: requests=(%d+)"))
      local bad = tonumber(out:match("non2xx=(%d+)")) + tonumber(out:match("errors=(%d+)"))
      if bad > 0 then error("bench: wrk saw " .. bad .. " failed requests:\n" .. out, 0) end
      local secs = tonumber(out:match("requests in ([%d.]+)s"))
      local _, cpu = parse_time(out)
      return requests, secs, cpu
    end
  end
  return {
    { name = "dialoginsight, Lua 5.4", run = script(lua_env("lua5.4") .. " lua5.4 " .. seq .. "di.lua") },
    { name = "dialoginsight, LuaJIT", run = script(lua_env("luajit") .. " luajit " .. seq .. "di.lua") },
    { name = "dialoginsight host", run = script(ROOT .. "/bin/dialoginsight run " .. seq .. "di.lua") },
    { name = "Python requests (Session)", run = script("/usr/bin/python3 " .. seq .. "py_requests.py") },
    { name = "LuaSocket + LuaSec", run = script("LUA_PATH=';;' LUA_CPATH=';;' lua5.4 " .. seq .. "luasocket.lua") },
    { name = "libcurl alone, C loop (reference)", run = script(sh_quote(BENCH_DIR .. "/curl_floor")) },
    { name = "wrk -t1 -c1 (limit)", run = wrk(1), limit = true },
  }, wrk
end

local results = { seq = {}, json = {}, rss = {} }

local function scenario_seq(contenders)
  local protos = { { "HTTP", E.STATIC_HTTP_URL }, { "HTTPS", E.STATIC_HTTPS_URL } }
  local rows = {}
  for _, p in ipairs(protos) do
    for i in ipairs(contenders) do rows[p[1] .. i] = { rate = {}, cpu = {} } end
  end
  for r = 1, ROUNDS do
    if not smoke then io.stderr:write(string.format("bench: 1 sequential calls, round %d/%d\n", r, ROUNDS)) end
    for _, p in ipairs(protos) do
      for i, c in ipairs(contenders) do
        local calls, wall, cpu = c.run(p[2])
        local row = rows[p[1] .. i]
        row.rate[#row.rate + 1] = calls / wall
        row.cpu[#row.cpu + 1] = cpu / calls * 1e6
      end
    end
  end
  for _, p in ipairs(protos) do
    local out = {}
    for i, c in ipairs(contenders) do
      local row = rows[p[1] .. i]
      out[i] = { name = c.name, limit = c.limit, rate = median(row.rate), cpu = median(row.cpu),
                 rates = row.rate }
    end
    results.seq[p[1]] = out
  end
end

-- Scenario 2 ---------------------------------------------------------------

local function scenario_many(wrk)
  local script = ROOT .. "/bench/many/call_many.lua"
  local contenders = {
    { name = "call_many, Lua 5.4, concurrency 8", run = function(url)
        return parse_line(run(lua_env("lua5.4", { BENCH_URL = url, BENCH_CALLS = MANY_CALLS })
          .. " lua5.4 " .. script)) end },
    { name = "call_many, LuaJIT, concurrency 8", run = function(url)
        return parse_line(run(lua_env("luajit", { BENCH_URL = url, BENCH_CALLS = MANY_CALLS })
          .. " luajit " .. script)) end },
    { name = "libcurl multi alone, perform + poll, C loop (reference)", run = function(url)
        return parse_line(run(env_prefix { BENCH_URL = url, BENCH_CALLS = MANY_CALLS } .. " "
          .. sh_quote(BENCH_DIR .. "/multi_floor"))) end },
    { name = "libcurl multi alone, socket_action + epoll, C loop (reference)", run = function(url)
        return parse_line(run(env_prefix { BENCH_URL = url, BENCH_CALLS = MANY_CALLS } .. " "
          .. sh_quote(BENCH_DIR .. "/multi_floor") .. " -s")) end },
    { name = "wrk -t1 -c8 (limit)", run = wrk(8), limit = true },
  }
  local rows = {}
  for i in ipairs(contenders) do rows[i] = { rate = {}, cpu = {} } end
  for r = 1, ROUNDS do
    if not smoke then io.stderr:write(string.format("bench: 2 call_many, round %d/%d\n", r, ROUNDS)) end
    for i, c in ipairs(contenders) do
      local calls, wall, cpu = c.run(E.STATIC_HTTP_URL)
      rows[i].rate[#rows[i].rate + 1] = calls / wall
      rows[i].cpu[#rows[i].cpu + 1] = cpu / calls * 1e6
    end
  end
  results.many = {}
  for i, c in ipairs(contenders) do
    results.many[i] = { name = c.name, limit = c.limit, rate = median(rows[i].rate),
                        cpu = median(rows[i].cpu), rates = rows[i].rate }
  end
end

-- Scenario 3 ---------------------------------------------------------------

local function scenario_json()
  if not smoke then io.stderr:write("bench: 3 JSON\n") end
  local get = BENCH_DIR .. "/data/get_1000.json"
  local script = ROOT .. "/bench/json/json.lua"
  for _, rt in ipairs { "lua5.4", "luajit" } do
    local out = run(lua_env(rt) .. " " .. rt .. " " .. script .. " " .. sh_quote(get) .. " "
      .. JSON_ROUNDS .. " " .. (smoke and 0.02 or 1))
    local t = { encode = { core = {}, cjson = {} }, decode = { core = {}, cjson = {} } }
    for op, impl, us in out:gmatch("op=(%a+) impl=(%a+) us=([%d.]+)") do
      local l = t[op][impl]
      l[#l + 1] = tonumber(us)
    end
    for _, op in ipairs { "encode", "decode" } do
      local c, j = t[op].core, t[op].cjson
      if #c ~= JSON_ROUNDS or #j ~= JSON_ROUNDS then error("bench: json.lua:\n" .. out, 0) end
      -- the overhead is the median of each round's ratio: core and cjson ran
      -- back to back in it, so a slow phase of the machine hits both
      local ratios = {}
      for r = 1, JSON_ROUNDS do ratios[r] = c[r] / j[r] end
      results.json[#results.json + 1] = { rt = rt, op = op, core = median(c), cjson = median(j),
                                          over = median(ratios) - 1 }
    end
  end
end

-- Scenario 6 ---------------------------------------------------------------

-- One limiter decision, local and through Redis, alternating per round.
local function scenario_limiter()
  local r = {}
  for _, b in ipairs { "local", "redis" } do r[b] = { us = {}, cpu = {} } end
  for round = 1, ROUNDS do
    for _, b in ipairs { "local", "redis" } do
      io.stderr:write("bench: 6 limiter ", b, ", round ", round, "/", ROUNDS, "\n")
      local calls, wall, cpu = parse_line(run(lua_env("lua5.4", {
        BENCH_LIMITER_DIR = E.BENCH_LIMITER_DIR, BENCH_REDIS_URL = E.BENCH_REDIS_URL,
      }) .. " lua5.4 " .. ROOT .. "/bench/limiter/decide.lua " .. b .. " " .. LIMITER_CALLS))
      r[b].us[#r[b].us + 1] = wall / calls * 1e6
      r[b].cpu[#r[b].cpu + 1] = cpu / calls * 1e6
    end
  end
  results.limiter = r
end

-- Scenarios 4 and 5 --------------------------------------------------------

local HOST = ROOT .. "/bin/dialoginsight"
-- POSTs body to the bench sandbox's control API, through a file: a body
-- fault holds a whole captured reply.
local function control(path, body)
  local file = BENCH_DIR .. "/control.json"
  local f = assert(io.open(file, "wb"))
  f:write(body)
  f:close()
  run("curl -sS --fail --cacert " .. sh_quote(E.DI_CA_FILE) .. " --data-binary @" .. sh_quote(file)
    .. " " .. sh_quote(E.DI_SANDBOX_URL .. "_sandbox/" .. path))
end

local function csv(rows)
  local path = string.format("%s/data/contacts_%d.csv", BENCH_DIR, rows)
  local f = io.open(path, "rb")
  if f then f:close() return path end
  run("lua5.4 " .. ROOT .. "/examples/gen_contacts.lua " .. rows .. " > " .. sh_quote(path .. ".tmp")
    .. " && mv " .. sh_quote(path .. ".tmp") .. " " .. sh_quote(path))
  return path
end

local function sync_once(file, extra, global)
  os.remove(file .. ".di-journal")
  os.remove(file .. ".rejects.csv")
  local out = run("cd " .. sh_quote(BENCH_DIR .. "/data") .. " && "
    .. env_prefix { DI_RATE = 1000, DI_BURST = 100 } .. " " .. TIME .. HOST .. " " .. (global or "")
    .. " sync contacts " .. sh_quote(file) .. " --batch-size 100 --concurrency 8 "
    .. "--progress-interval 1000 " .. (extra or ""))
  if not out:match(" 0 rejected") then error("bench: sync:\n" .. out, 0) end
  return parse_time(out)
end

-- The servers scenario 4's sync runs against, each as the faults set on
-- the bench sandbox (its "total" latency: the answer leaves 20 ms after the
-- request arrived, the sandbox's own time inside it, never sooner).
local LATENCY_TOTAL = { type = "latency", ms = 20, total = true, method = "contacts.merge" }
local SYNC_SERVERS = {
  { key = "bound", name = "sync, latency-bound server: 20 ms from arrival, the captured 100-record reply",
    faults = function(canned)
      return { LATENCY_TOTAL, { type = "body", body = canned, method = "contacts.merge" } }
    end },
  { key = "sandbox", name = "sync, sandbox: each Merge processed within its 20 ms",
    faults = function() return { LATENCY_TOTAL } end },
  { key = "added", name = "sync, sandbox: 20 ms, then each Merge processed",
    faults = function() return { { type = "latency", ms = 20, method = "contacts.merge" } } end },
  { key = "http1", name = "sync, sandbox: each Merge processed within its 20 ms, over HTTP/1.1 (`http2 = false`)",
    faults = function() return { LATENCY_TOTAL } end, http1 = true },
}

local function set_faults(list) control("faults", cjson.encode { faults = list }) end

-- The reference row: single-record Merges through call_many, 20 ms from
-- arrival: what the sandbox's timers and the transport add to a call that
-- costs next to nothing.
local function latency_floor()
  control("reset", '{"seed":42}')
  set_faults { LATENCY_TOTAL }
  local _, wall = parse_line(run(lua_env("lua5.4", {
    BENCH_URL = E.DI_BASE_URL, BENCH_CALLS = FLOOR_CALLS, BENCH_CA = E.DI_CA_FILE,
    BENCH_KEY_ID = E.DI_KEY_ID, BENCH_KEY = E.DI_KEY, BENCH_PROJECT = E.DI_PROJECT,
    BENCH_LIMITER_DIR = BENCH_DIR .. "/limiter" }) .. " lua5.4 " .. ROOT .. "/bench/many/call_many.lua"))
  return wall
end

local function scenario_sync()
  local file = csv(SYNC_ROWS)
  local canned = assert(io.open(BENCH_DIR .. "/data/merge_100.json", "rb")):read("a")
  local http1 = BENCH_DIR .. "/http1.conf"
  local f = assert(io.open(http1, "wb"))
  f:write("http2 = false\n")
  f:close()
  local rows = {}
  for i in ipairs(SYNC_SERVERS) do rows[i] = { walls = {}, cpus = {}, rsss = {} } end
  local floor_walls = {}
  for r = 1, ROUNDS do
    if not smoke then io.stderr:write(string.format("bench: 4 sync, round %d/%d\n", r, ROUNDS)) end
    for i, server in ipairs(SYNC_SERVERS) do
      control("reset", '{"seed":42}')
      set_faults(server.faults(canned))
      local wall, cpu, rss = sync_once(file, nil, server.http1 and ("--config " .. sh_quote(http1)))
      local row = rows[i]
      row.walls[r], row.cpus[r], row.rsss[r] = wall, cpu / SYNC_ROWS * 1e6, rss
    end
    floor_walls[r] = latency_floor()
  end
  control("reset", '{"seed":42}')
  local sync = { rows = SYNC_ROWS, ideal = SYNC_ROWS / 100 / 8 * 0.020, servers = {}, by = {},
                 floor = { calls = FLOOR_CALLS, ideal = FLOOR_CALLS / 8 * 0.020,
                           wall = median(floor_walls), walls = floor_walls } }
  for i, server in ipairs(SYNC_SERVERS) do
    local row = rows[i]
    local x = { name = server.name, wall = median(row.walls), cpu = median(row.cpus), walls = row.walls,
                rss = median(row.rsss) }
    sync.servers[i], sync.by[server.key] = x, x
  end
  results.sync = sync
  results.rss.real = { rows = SYNC_ROWS, kb = sync.by.sandbox.rss }
end

local function scenario_dry()
  local file = csv(DRY_ROWS)
  local rsss, walls, cpus = {}, {}, {}
  for r = 1, ROUNDS do
    if not smoke then io.stderr:write(string.format("bench: 5 dry run, round %d/%d\n", r, ROUNDS)) end
    local wall, cpu, rss = sync_once(file, "--dry-run")
    rsss[r], walls[r], cpus[r] = rss, wall, cpu / DRY_ROWS * 1e6
  end
  results.rss.dry = { rows = DRY_ROWS, kb = median(rsss), wall = median(walls), walls = walls,
                      cpu = median(cpus) }
end

-- Scenario 7 ---------------------------------------------------------------

-- The sandbox's own Merge rate, mixed (10,000 e-mails) and one hot contact,
-- through sandbox/bench/run against the bench sandbox (its rates per fully
-- used core of the worker: the machine is shared).
local function scenario_sandbox()
  local secs = smoke and 1 or 3
  local mixed, hot = {}, {}
  for r = 1, ROUNDS do
    if not smoke then io.stderr:write(string.format("bench: 7 sandbox Merge, round %d/%d\n", r, ROUNDS)) end
    control("reset", '{"seed":42}')
    local out = run("DI_SANDBOX_DIR=" .. sh_quote(BENCH_DIR .. "/sandbox") .. " " .. ROOT
      .. "/sandbox/bench/run " .. secs .. " 4")
    local rates = {}
    for rate in out:gmatch("%((%d+) req/s per fully used core%)") do rates[#rates + 1] = tonumber(rate) end
    if #rates ~= 2 then error("bench: sandbox/bench/run:\n" .. out, 0) end
    mixed[r], hot[r] = rates[1], rates[2]
  end
  control("reset", '{"seed":42}')
  results.sandbox = { mixed = median(mixed), hot = median(hot), mixeds = mixed, hots = hot }
end

-- Report -------------------------------------------------------------------

local function fmt_int(x)
  local s, n = string.format("%.0f", x), 1
  while n > 0 do s, n = s:gsub("^(%d+)(%d%d%d)", "%1,%2") end
  return s
end

local function verdict(ok) return ok and "met" or "**missed**" end


-- The rows of a rate scenario, each against the limit (wrk) of the same run.
local function rates_table(w, rows, limit)
  w("| client | req/s | × wrk | client CPU µs/call | runs (req/s) |")
  w("|---|---:|---:|---:|---|")
  for _, r in ipairs(rows) do
    local runs = {}
    for i, x in ipairs(r.rates) do runs[i] = fmt_int(x) end
    w("| ", r.name, " | ", fmt_int(r.rate), " | ", string.format("%.2f", r.rate / limit.rate),
      " | ", string.format("%.1f", r.cpu), " | ", table.concat(runs, " / "), " |")
  end
end

local function report(machine)
  local L = {}
  local function w(...) L[#L + 1] = table.concat({ ... }) end
  w("# Benchmarks", smoke and " (smoke run: tiny counts, figures meaningless)" or "")
  w("")
  w(machine)
  w("")
  w("Medians of ", ROUNDS, " alternating rounds. Ratios are to the limit (wrk) of the same table, measured in the same run.")
  local targets = {}
  for _, proto in ipairs(results.seq.HTTP and { "HTTP", "HTTPS" } or {}) do
    local rows = results.seq[proto]
    local limit, py
    for _, r in ipairs(rows) do
      if r.limit then limit = r end
      if r.name:match("^Python") then py = r end
    end
    w("")
    w("## 1. Sequential single-record Contacts.Merge, one keep-alive connection, static, ", proto)
    w("")
    rates_table(w, rows, limit)
    local ours = rows[1]
    if proto == "HTTP" then
      targets[#targets + 1] = { "1 HTTP: ≥ 0.90 × wrk -c1", string.format("%.2f ×", ours.rate / limit.rate),
        ours.rate / limit.rate >= 0.90 }
      targets[#targets + 1] = { "1 HTTP: ≥ 5 × Python requests", string.format("%.2f ×", ours.rate / py.rate),
        ours.rate / py.rate >= 5 }
    else
      targets[#targets + 1] = { "1 HTTPS: ≥ 0.85 × wrk -c1", string.format("%.2f ×", ours.rate / limit.rate),
        ours.rate / limit.rate >= 0.85 }
    end
  end
  if results.many then
    local rows = results.many
    local limit = rows[#rows]
    w("")
    w("## 2. ", fmt_int(MANY_CALLS), " calls through call_many at concurrency 8, static, HTTP")
    w("")
    rates_table(w, rows, limit)
    targets[#targets + 1] = { "2: ≥ 0.35 × wrk -c8 (Lua 5.4)", string.format("%.2f ×", rows[1].rate / limit.rate),
      rows[1].rate / limit.rate >= 0.35 }
    targets[#targets + 1] = { "2: LuaJIT ≥ Lua 5.4", string.format("%.2f ×", rows[2].rate / rows[1].rate),
      rows[2].rate >= rows[1].rate }
  end
  if results.json[1] then
    w("")
    w("## 3. JSON, in process (µs per operation)")
    w("")
    w("Medians of ", JSON_ROUNDS, " rounds; the overhead is the median of the rounds' core/cjson ratios.")
    w("")
    w("| runtime | operation | core | raw cjson | overhead |")
    w("|---|---|---:|---:|---:|")
    for _, j in ipairs(results.json) do
      local over = j.over
      w("| ", j.rt, " | ", j.op == "encode" and "encode 100-record Merge request" or "decode 1,000-record Get reply",
        " | ", string.format("%.1f", j.core), " | ", string.format("%.1f", j.cjson), " | ",
        string.format("%+.1f %%", over * 100), " |")
    end
    for _, j in ipairs(results.json) do
      local over = j.over
      targets[#targets + 1] = { string.format("3 %s (%s): overhead ≤ 15 %%", j.op, j.rt),
        string.format("%+.1f %%", over * 100), over <= 0.15 }
    end
  end
  if results.sync then
    local s, dry = results.sync, results.rss.dry
    local function runs_of(walls)
      local t = {}
      for i, x in ipairs(walls) do t[i] = string.format("%.2f", x) end
      return table.concat(t, " / ")
    end
    w("")
    w("## 4. sync of ", fmt_int(s.rows), " rows, 20 ms of latency per Merge, batch 100, concurrency 8")
    w("")
    w("| run | wall | ideal | × ideal | client CPU µs/row | runs (wall s) |")
    w("|---|---:|---:|---:|---:|---|")
    for _, x in ipairs(s.servers) do
      w(string.format("| %s | %.2f s | %.2f s | %.2f | %.1f | %s |", x.name, x.wall, s.ideal, x.wall / s.ideal,
        x.cpu, runs_of(x.walls)))
    end
    local f = s.floor
    w(string.format("| %s single-record Merges, call_many, 20 ms from arrival (reference: the server's timers and "
      .. "the transport) | %.2f s | %.2f s | %.2f | | %s |", fmt_int(f.calls), f.wall, f.ideal, f.wall / f.ideal,
      runs_of(f.walls)))
    w(string.format("| sync --dry-run, %s rows | %.2f s | | | %.1f | %s |", fmt_int(dry.rows), dry.wall,
      dry.cpu, runs_of(dry.walls)))
    local bound, sandbox = s.by.bound, s.by.sandbox
    targets[#targets + 1] = { "4: wall ≤ 1.10 × ideal (latency-bound server)",
      string.format("%.2f ×", bound.wall / s.ideal), bound.wall / s.ideal <= 1.10 }
    targets[#targets + 1] = { "4: wall ≤ 1.10 × ideal (sandbox, each Merge processed within its 20 ms)",
      string.format("%.2f ×", sandbox.wall / s.ideal), sandbox.wall / s.ideal <= 1.10 }
    targets[#targets + 1] = { "4: client CPU ≤ 8 µs/row", string.format("%.1f µs", sandbox.cpu), sandbox.cpu <= 8 }
  end
  if results.rss.dry then
    local r = results.rss
    w("")
    w("## 5. Peak RSS of the host (/usr/bin/time, maximum resident set size)")
    w("")
    w("| run | peak RSS |")
    w("|---|---:|")
    w(string.format("| sync --dry-run, %s rows (%.1f s) | %.1f MB |", fmt_int(r.dry.rows), r.dry.wall, r.dry.kb / 1024))
    targets[#targets + 1] = { "5: dry run peak RSS < 64 MB", string.format("%.1f MB", r.dry.kb / 1024), r.dry.kb / 1024 < 64 }
    if r.real then
      w(string.format("| sync against the sandbox, %s rows (scenario 4) | %.1f MB |", fmt_int(r.real.rows), r.real.kb / 1024))
      targets[#targets + 1] = { "5: real sync peak RSS < 64 MB", string.format("%.1f MB", r.real.kb / 1024), r.real.kb / 1024 < 64 }
    end
  end
  if results.limiter then
    local r = results.limiter
    w("")
    w("## 6. One limiter decision (acquire, let through), Lua 5.4, in process")
    w("")
    w("| backend | µs per decision (wall) | client CPU µs | × local | runs (µs) |")
    w("|---|---:|---:|---:|---|")
    local base = median(r["local"].us)
    for _, b in ipairs { "local", "redis" } do
      local runs = {}
      for i, x in ipairs(r[b].us) do runs[i] = string.format("%.2f", x) end
      w(string.format("| %s | %.2f | %.2f | %.1f | %s |",
        b == "local" and "local (shared memory, limiter/shm.lua)" or "Redis on loopback (limiter/redis.lua)",
        median(r[b].us), median(r[b].cpu), median(r[b].us) / base, table.concat(runs, " / ")))
    end
  end
  if results.sandbox then
    local r = results.sandbox
    local function runs(xs)
      local t = {}
      for i, x in ipairs(xs) do t[i] = fmt_int(x) end
      return table.concat(t, " / ")
    end
    w("")
    w("## 7. The sandbox's single-record Contacts.Merge, 4 connections (sandbox/bench/run)")
    w("")
    w("| workload | req/s per fully used core of the worker | runs |")
    w("|---|---:|---|")
    w("| mixed: 10,000 e-mails | ", fmt_int(r.mixed), " | ", runs(r.mixeds), " |")
    w("| hot: one contact, updated over and over | ", fmt_int(r.hot), " | ", runs(r.hots), " |")
    targets[#targets + 1] = { "7: hot ≥ 0.6 × mixed", string.format("%.2f ×", r.hot / r.mixed),
      r.hot / r.mixed >= 0.6 }
  end
  w("")
  w("## Targets")
  w("")
  w("| target | measured | |")
  w("|---|---:|---|")
  for _, t in ipairs(targets) do w("| ", t[1], " | ", t[2], " | ", verdict(t[3]), " |") end
  return table.concat(L, "\n") .. "\n"
end

-- Main ---------------------------------------------------------------------

local started = os.time()
write_wrk_body()
local contenders, wrk = seq_contenders()
if wanted(1) then scenario_seq(contenders) end
if wanted(2) then scenario_many(wrk) end
if wanted(3) then scenario_json() end
if wanted(4) then scenario_sync() end
if wanted(4) or wanted(5) then scenario_dry() end
if wanted(6) then scenario_limiter() end
if wanted(7) then scenario_sandbox() end

local machine = string.format("%s · %s, %s cores · commit %s · load average at start %s · %d s",
  os.date("!%Y-%m-%d %H:%M UTC", started), E.BENCH_CPU, E.BENCH_NPROC, E.BENCH_COMMIT,
  E.BENCH_LOAD, os.time() - started)
local text = report(machine)
io.stdout:write(text)
local out = (smoke or ONLY) and (BENCH_DIR .. (smoke and "/smoke.md" or "/only.md"))
  or (ROOT .. "/bench/results/latest.md")
local f = assert(io.open(out, "wb"))
f:write(text)
f:close()
io.stderr:write("bench: written to ", out, "\n")
if smoke then
  -- every figure of the table must be a number: no nan, no inf
  if text:match("[%s|(]%-?nan") or text:match("[%s|(]%-?inf") then
    io.stderr:write("bench: smoke run produced a figure that is not a number\n")
    os.exit(1)
  end
end
