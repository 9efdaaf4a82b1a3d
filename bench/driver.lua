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

-- Scenario 10: the cost of metrics on the sequential call ---------------------
-- Metrics on and off side by side, alternating, on HTTP and HTTPS: calls/s and
-- CPU per call (medians), and the exact instructions per call under callgrind: the
-- difference of two runs of N1 and N2 calls over N2 - N1 (startup and warm-up cancel).
local METRICS_N1, METRICS_N2 = smoke and 5 or 50, smoke and 15 or 250

local function scenario_metrics()
  local seq = ROOT .. "/bench/seq/"
  local sides = { { "on", "1" }, { "off", "0" } }
  local function side_cmd(flag, url, extra, wrapper)
    local vars = { BENCH_URL = url, BENCH_METRICS = flag }
    for k, v in pairs(extra or {}) do vars[k] = v end
    return lua_env("lua5.4", vars) .. " " .. (wrapper or "") .. "lua5.4 " .. seq .. "di.lua"
  end
  local protos = { { "HTTP", E.STATIC_HTTP_URL }, { "HTTPS", E.STATIC_HTTPS_URL } }
  local rows = {}
  for r = 1, ROUNDS do
    if not smoke then io.stderr:write(string.format("bench: 10 metrics on/off, round %d/%d\n", r, ROUNDS)) end
    for _, p in ipairs(protos) do
      for _, side in ipairs(sides) do
        local k = p[1] .. side[1]
        rows[k] = rows[k] or { rate = {}, cpu = {} }
        local calls, wall, cpu = parse_line(run(side_cmd(side[2], p[2])))
        table.insert(rows[k].rate, calls / wall)
        table.insert(rows[k].cpu, cpu / calls * 1e6)
      end
    end
  end
  local ir = {}
  for _, p in ipairs(protos) do
    for _, side in ipairs(sides) do
      local counts = {}
      for _, n in ipairs { METRICS_N1, METRICS_N2 } do
        local out = BENCH_DIR .. "/callgrind.metrics.out"
        os.remove(out)
        run(side_cmd(side[2], p[2], { BENCH_CALLS = tostring(n), BENCH_WARMUP = "5" },
          "valgrind --tool=callgrind --callgrind-out-file=" .. sh_quote(out) .. " "))
        local f = assert(io.open(out))
        local text = f:read("a")
        f:close()
        counts[#counts + 1] = tonumber(text:match("\nsummary: (%d+)") or text:match("\ntotals: (%d+)"))
      end
      ir[p[1] .. side[1]] = (counts[2] - counts[1]) / (METRICS_N2 - METRICS_N1)
    end
  end
  results.metrics = { rows = rows, ir = ir }
end

-- Scenario 11: instruction counts --------------------------------------------
-- Exact where rates swing 2 x (issue 26): instructions per unit under callgrind, each
-- the difference of two runs of different lengths over the difference of the lengths
-- (bench/instructions.lua), beside the references: a bare Lua loop over our own C
-- handle and lua-cjson (bench/seq/bare.lua, bench/many/bare_multi.lua), libcurl alone in C.
package.path = ROOT .. "/bench/?.lua;" .. package.path
local instructions = require "instructions"
local IR = smoke and { seq = { 3, 8 }, many = { 20, 60 }, rows = { 50, 150 }, json = { 5, 15 } }
  or { seq = { 300, 1300 }, many = { 200, 1200 }, rows = { 200, 2200 }, json = { 100, 300 } }

local function scenario_instructions()
  if not smoke then io.stderr:write("bench: 11 instruction counts (callgrind)\n") end
  local out = BENCH_DIR .. "/callgrind.11.out"
  local function per(n, cmd) return instructions.per_unit(cmd, n[1], n[2], out) end
  local function lua(rt, script, url)
    return function(n, prefix)
      return lua_env(rt, { BENCH_URL = url, BENCH_CALLS = tostring(n), BENCH_WARMUP = "5" }) .. " "
        .. prefix .. rt .. " " .. sh_quote(ROOT .. "/bench/" .. script)
    end
  end
  local function floor(bin, url)
    return function(n, prefix)
      return env_prefix { BENCH_URL = url, BENCH_CALLS = tostring(n), BENCH_WARMUP = "5" } .. " " .. prefix
        .. sh_quote(BENCH_DIR .. "/" .. bin)
    end
  end
  local r = { seq = {}, many = {}, rows = {}, json = {} }
  for _, p in ipairs { { "HTTP", E.STATIC_HTTP_URL }, { "HTTPS", E.STATIC_HTTPS_URL } } do
    r.seq[p[1]] = {
      { "client:call, Lua 5.4", per(IR.seq, lua("lua5.4", "seq/di.lua", p[2])) },
      { "client:call, LuaJIT", per(IR.seq, lua("luajit", "seq/di.lua", p[2])) },
      { "bare Lua 5.4 loop: core.session:post + lua-cjson (reference)", per(IR.seq, lua("lua5.4", "seq/bare.lua", p[2])) },
      { "libcurl alone, C loop (reference)", per(IR.seq, floor("curl_floor", p[2])) },
    }
  end
  local url = E.STATIC_HTTP_URL
  r.many = {
    { "call_many, Lua 5.4, concurrency 8", per(IR.many, lua("lua5.4", "many/call_many.lua", url)) },
    { "call_many, LuaJIT, concurrency 8", per(IR.many, lua("luajit", "many/call_many.lua", url)) },
    { "bare Lua 5.4 multi loop: core.session:multi + lua-cjson, 8 in flight (reference)",
      per(IR.many, lua("lua5.4", "many/bare_multi.lua", url)) },
    { "the same bare loop over call_many's list, each reply kept (call_many's job; reference)",
      per(IR.many, lua("lua5.4", "many/bare_list.lua", url)) },
    { "call_stream, Lua 5.4: calls made as taken, results dropped (the bare loop's job)",
      per(IR.many, lua("lua5.4", "many/call_stream.lua", url)) },
    { "libcurl multi alone, C loop (reference)", per(IR.many, floor("multi_floor", url)) },
  }
  -- one sync row, against the bench sandbox (its fields; the real run merges there)
  local function rows(extra)
    return function(n, prefix)
      local file = BENCH_DIR .. "/data/rows_" .. n .. ".csv"
      local f = assert(io.open(file, "wb"))
      f:write("EMail,FirstName,Points\n")
      for i = 1, n do f:write(string.format("ir%d@example.com,Ann%d,%d\n", i, i, i % 1000)) end
      f:close()
      os.remove(file .. ".di-journal"); os.remove(file .. ".rejects.csv"); os.remove(file .. ".di-state")
      return "DI_RATE=100000 DI_BURST=1000 " .. prefix .. sh_quote(ROOT .. "/bin/dialoginsight")
        .. " sync contacts " .. sh_quote(file) .. " -q --restart " .. extra
    end
  end
  r.rows = {
    { "sync, --dry-run", per(IR.rows, rows("--dry-run")) },
    { "sync, merged (batches of 100, the bench sandbox)", per(IR.rows, rows("--batch-size 100")) },
  }
  local get = BENCH_DIR .. "/data/get_1000.json"
  local function json(op, impl)
    return function(n, prefix)
      return lua_env("lua5.4") .. " " .. prefix .. "lua5.4 " .. sh_quote(ROOT .. "/bench/json/json.lua") .. " "
        .. sh_quote(get) .. " count " .. op .. " " .. impl .. " " .. n
    end
  end
  for _, o in ipairs { { "merge", "decode the single-record Merge reply (593 bytes)" },
                       { "decode", "decode a 1,000-record Contacts.Get reply (about 298 KB)" },
                       { "encode", "encode a 100-record Merge request" } } do
    r.json[#r.json + 1] = { o[2], per(IR.json, json(o[1], "core")), per(IR.json, json(o[1], "cjson")) }
  end
  results.instructions = r
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
    { name = "bare Lua 5.4 multi loop: core.session:multi + lua-cjson, 8 in flight (reference)", run = function(url)
        return parse_line(run(lua_env("lua5.4", { BENCH_URL = url, BENCH_CALLS = MANY_CALLS })
          .. " lua5.4 " .. ROOT .. "/bench/many/bare_multi.lua")) end },
    { name = "the same bare loop over call_many's list, each reply kept (call_many's job; reference)",
      run = function(url)
        return parse_line(run(lua_env("lua5.4", { BENCH_URL = url, BENCH_CALLS = MANY_CALLS })
          .. " lua5.4 " .. ROOT .. "/bench/many/bare_list.lua")) end },
    { name = "call_stream, Lua 5.4, concurrency 8: calls made as taken, results dropped (the bare loop's job)",
      run = function(url)
        return parse_line(run(lua_env("lua5.4", { BENCH_URL = url, BENCH_CALLS = MANY_CALLS })
          .. " lua5.4 " .. ROOT .. "/bench/many/call_stream.lua")) end },
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
  local wall, cpu, rss = parse_time(out)
  return wall, cpu, rss, out
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
    -- (BENCH_KEY: bench/run exports it; a command line would show it to ps)
    BENCH_KEY_ID = E.DI_KEY_ID, BENCH_PROJECT = E.DI_PROJECT,
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

-- Scenario 9 ---------------------------------------------------------------

-- The sync state (docs/sync.md, "The state"): --changed-only over a file every row of
-- which the state already holds, side by side with a dry run of it; then the same file
-- with 1 % of its rows changed, --changed-only against a plain full sync, against the
-- latency-bound server of scenario 4. Counts in the smoke run: whole batches of changed
-- rows (the latency-bound server answers every Merge with a 100-record reply).
local STATE_ROWS = smoke and 20000 or 1000000 -- a multiple of 100 × STATE_EVERY
local STATE_EVERY = 100                         -- every 100th row changed: 1 %
local STATE_ROUNDS = smoke and 1 or 3           -- a full sync of 1,000,000 rows is ~30 s a round

local function control_get(path)
  return cjson.decode(run("curl -sS --fail --cacert " .. sh_quote(E.DI_CA_FILE) .. " "
    .. sh_quote(E.DI_SANDBOX_URL .. "_sandbox/" .. path)))
end

-- The Merge calls the bench sandbox logged since its log was last cleared.
local function merge_calls()
  local n = 0
  for _, e in ipairs(control_get("log").entries) do
    if e.service == "contacts" and e.method == "merge" then n = n + 1 end
  end
  return n
end

local function remove_db(path)
  for _, x in ipairs { "", "-wal", "-shm" } do os.remove(path .. x) end
end

local function copy_db(from, to)
  remove_db(to)
  run("cp " .. sh_quote(from) .. " " .. sh_quote(to))
end

-- A sync of file with the state at path: wall, CPU, peak RSS, the Merge calls the server
-- logged, and the rows the summary says were merged (sent and taken) and unchanged.
local function state_sync(file, path, extra)
  control("log/clear", "{}")
  local wall, cpu, rss, out = sync_once(file, "--state " .. sh_quote(path) .. " " .. (extra or ""))
  return { wall = wall, cpu = cpu, rss = rss, calls = merge_calls(), out = out,
           merged = tonumber(out:match(", (%d+) merged") or -1),
           unchanged = tonumber(out:match(", (%d+) unchanged") or 0) }
end

local function scenario_state()
  local file = csv(STATE_ROWS)
  local changed = string.format("%s/data/contacts_%d_changed%d.csv", BENCH_DIR, STATE_ROWS, STATE_EVERY)
  local f = io.open(changed, "rb")
  if f then f:close() else
    run("lua5.4 " .. ROOT .. "/bench/state/change.lua " .. sh_quote(file) .. " " .. sh_quote(changed .. ".tmp")
      .. " " .. STATE_EVERY .. " && mv " .. sh_quote(changed .. ".tmp") .. " " .. sh_quote(changed))
  end
  local nchanged = STATE_ROWS // STATE_EVERY
  -- the canned reply's ids are 100 real contacts', the same for every batch: a state would
  -- take 10,000 keys for one contact, and hold all but the newest (docs/sync.md, "held");
  -- a real server gives each key its own contact.  Here: no id (0), as for a key it did not say
  local canned = assert(io.open(BENCH_DIR .. "/data/merge_100.json", "rb")):read("a")
    :gsub('"IdRecord":%s*%d+', '"IdRecord":0')
  local st = string.format("%s/data/state_%d.di-state", BENCH_DIR, STATE_ROWS)
  local base = st .. ".base"
  -- the state: one real sync of the whole file, against the fast server (the latency-bound
  -- server's canned reply, without its latency)
  if not smoke then io.stderr:write("bench: 9 sync state, building the state of ", STATE_ROWS, " rows\n") end
  control("reset", '{"seed":42}')
  set_faults { { type = "body", body = canned, method = "contacts.merge" } }
  remove_db(st)
  local build = state_sync(file, st)
  local sf = assert(io.open(st, "rb"))
  build.bytes = sf:seek("end")
  sf:close()
  copy_db(st, base)
  -- then the latency-bound server of scenario 4 (20 ms from arrival)
  set_faults(SYNC_SERVERS[1].faults(canned))
  local r = { same = {}, dry = {}, one = {}, full = {} }
  for round = 1, STATE_ROUNDS do
    if not smoke then io.stderr:write(string.format("bench: 9 sync state, round %d/%d\n", round, STATE_ROUNDS)) end
    copy_db(base, st)
    r.same[round] = state_sync(file, st, "--changed-only")
    local wall, cpu, rss = sync_once(file, "--dry-run")
    r.dry[round] = { wall = wall, cpu = cpu, rss = rss }
    copy_db(base, st)
    r.one[round] = state_sync(changed, st, "--changed-only")
    copy_db(base, st)
    r.full[round] = state_sync(changed, st)
  end
  remove_db(st)
  remove_db(base)
  control("reset", '{"seed":42}')
  local s = { rows = STATE_ROWS, changed = nchanged, build = build, runs = r, bad = {} }
  for _, k in ipairs { "same", "dry", "one", "full" } do
    local walls, cpus, rsss = {}, {}, {}
    for i, x in ipairs(r[k]) do walls[i], cpus[i], rsss[i] = x.wall, x.cpu, x.rss end
    s[k] = { wall = median(walls), walls = walls, cpu = median(cpus), rss = median(rsss), x = r[k][1] }
  end
  -- what each run must have sent: nothing; the changed rows in whole batches; every row
  local function expect(what, x, calls, merged, unchanged)
    if x.calls ~= calls or x.merged ~= merged or x.unchanged ~= unchanged then
      s.bad[#s.bad + 1] = string.format("%s: %d Merge calls, %d merged, %d unchanged (expected %d, %d, %d)",
        what, x.calls, x.merged, x.unchanged, calls, merged, unchanged)
    end
  end
  expect("state build", build, STATE_ROWS // 100, STATE_ROWS, 0)
  for round = 1, STATE_ROUNDS do
    expect("--changed-only, nothing changed", r.same[round], 0, 0, STATE_ROWS)
    expect("--changed-only, 1 % changed", r.one[round], nchanged // 100, nchanged, STATE_ROWS - nchanged)
    expect("full sync", r.full[round], STATE_ROWS // 100, STATE_ROWS, 0)
  end
  results.state = s
  -- the smoke run proves that it works: a second run over an unchanged file sends nothing
  if smoke and #s.bad > 0 then error("bench: 9 sync state:\n  " .. table.concat(s.bad, "\n  "), 0) end
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

-- Scenario 8 ---------------------------------------------------------------

-- The webhook receiver (bench/webhooks/servers: webhooks/ngx.lua in nginx, two workers,
-- its store on disk) against a plain nginx with the same workers that answers every POST
-- 200 without reading a thing. Every request is its own signed event (bench/webhooks/
-- gen.lua), so the receiver stores each one; its answers are counted.
local HOOK_WRK_SECS = smoke and 1 or 2
-- per round: the receiver never gets near (a smoke run's 1 s once sent 5,282 requests, past
-- 5,000 events: wrk began the file again, and the repeats were duplicates)
local HOOK_WRK_EVENTS = 20000
local HOOK_RATE = 500
local HOOK_RATE_SECS = smoke and 0.5 or 2    -- per round: 10 s per server in a full run
local HOOK_MEM_EVENTS = smoke and 200 or 100000
local HOOK_DIR = BENCH_DIR .. "/webhooks"
local hook_seq = 0

-- n signed events with ids of their own: the file's path
local function hook_events(n)
  hook_seq = hook_seq + 1
  local prefix = string.format("b%d-%d", os.time(), hook_seq)
  local path = string.format("%s/events_%d.txt", HOOK_DIR, hook_seq)
  run(lua_env("lua5.4", { HOOK_SECRET = E.HOOK_SECRET }) .. " lua5.4 " .. ROOT .. "/bench/webhooks/gen.lua "
    .. prefix .. " " .. n .. " " .. sh_quote(path))
  return path, prefix
end

local function hook_sql(q)
  return (run("sqlite3 " .. sh_quote(E.HOOK_STORE) .. " " .. sh_quote(q)):gsub("%s+$", ""))
end

local function kv(out, what)
  local line = out:match("hooks: [^\n]*")
  if not line then error("bench: no hooks: line from " .. what .. ":\n" .. out, 0) end
  local t = {}
  for k, v in line:gmatch("([%w_]+)=([%d.naif-]+)") do t[k] = tonumber(v) end
  return t
end

local function hook_wrk(url, file)
  local out = run(TIME .. "wrk -t1 -c8 -d" .. HOOK_WRK_SECS .. "s -s " .. sh_quote(ROOT .. "/bench/webhooks/events.wrk.lua")
    .. " " .. sh_quote(url) .. " -- " .. sh_quote(file))
  local t = kv(out, "wrk")
  t.secs = tonumber(out:match("requests in ([%d.]+)s"))
  local _, cpu = parse_time(out)
  t.cpu = cpu
  return t
end

local function worker_rss(pidfile)
  local master = assert(io.open(pidfile)):read("l")
  local kb, n = 0, 0
  for pid in run("pgrep -P " .. master):gmatch("%d+") do
    local f = io.open("/proc/" .. pid .. "/status")
    if f then
      local s = f:read("a")
      f:close()
      -- the cache manager has no Lua and no store: only "nginx: worker process"
      local cmd = io.open("/proc/" .. pid .. "/cmdline")
      local c = cmd and cmd:read("a") or ""
      if cmd then cmd:close() end
      if c:find("worker process", 1, true) then
        kb, n = kb + tonumber(s:match("VmRSS:%s*(%d+)")), n + 1
      end
    end
  end
  return kb, n
end

local function file_size(path)
  local f = io.open(path, "rb")
  if not f then return 0 end
  local n = f:seek("end")
  f:close()
  return n
end

-- waits until the receiver's handler has had every stored event (at most secs)
local function hook_drained(secs)
  local t = os.time()
  repeat
    if hook_sql("select count(*) from events where state in ('pending','running')") == "0" then return true end
    run("sleep 0.2")
  until os.time() - t > secs
  return false
end

local function scenario_webhooks()
  local r = { tp = { receiver = {}, plain = {} }, lat = {} }
  -- 1. throughput, wrk -t1 -c8, alternating
  for round = 1, ROUNDS do
    if not smoke then io.stderr:write(string.format("bench: 8 webhooks throughput, round %d/%d\n", round, ROUNDS)) end
    local file, prefix = hook_events(HOOK_WRK_EVENTS)
    for _, which in ipairs { "receiver", "plain" } do
      local t = hook_wrk(which == "receiver" and E.HOOK_RECEIVER_URL or E.HOOK_PLAIN_URL, file)
      t.rate = t.requests / t.secs
      if which == "receiver" then
        -- requests still in flight when wrk stopped may be stored and not counted: >=
        t.in_store = tonumber(hook_sql("select count(*) from events where id like '" .. prefix .. "-%'"))
      end
      local l = r.tp[which]
      l[#l + 1] = t
    end
    os.remove(file)
  end
  -- 2. latency at a fixed rate, open loop, alternating; samples pooled over the rounds
  for _, which in ipairs { "receiver", "plain" } do
    r.lat[which] = { samples = HOOK_DIR .. "/latency_" .. which .. ".txt", runs = {} }
    os.remove(r.lat[which].samples)
  end
  for round = 1, ROUNDS do
    if not smoke then io.stderr:write(string.format("bench: 8 webhooks latency at %d/s, round %d/%d\n", HOOK_RATE, round, ROUNDS)) end
    local file = hook_events(math.ceil(HOOK_RATE * HOOK_RATE_SECS))
    for _, which in ipairs { "receiver", "plain" } do
      local l = r.lat[which]
      local out = run("/usr/bin/python3 " .. ROOT .. "/bench/webhooks/load.py rate "
        .. sh_quote(which == "receiver" and E.HOOK_RECEIVER_URL or E.HOOK_PLAIN_URL) .. " " .. sh_quote(file)
        .. " " .. HOOK_RATE .. " " .. HOOK_RATE_SECS .. " " .. sh_quote(l.samples))
      l.runs[#l.runs + 1] = kv(out, "load.py")
    end
    os.remove(file)
  end
  for _, which in ipairs { "receiver", "plain" } do
    local l = r.lat[which]
    local xs = {}
    for line in io.lines(l.samples) do xs[#xs + 1] = tonumber(line) end
    table.sort(xs)
    local function pct(p) return xs[math.max(1, math.min(#xs, math.ceil(p / 100 * #xs)))] end
    l.n, l.p50, l.p99, l.max = #xs, pct(50), pct(99), xs[#xs]
    l.sent, l.ok, l.non2xx, l.stored, l.duplicate, l.errors, l.late99 = 0, 0, 0, 0, 0, 0, {}
    for i, x in ipairs(l.runs) do
      for _, k in ipairs { "sent", "ok", "non2xx", "stored", "duplicate", "errors" } do l[k] = l[k] + x[k] end
      l.late99[i] = x.late_p99_ms
    end
  end
  -- 3. memory: a fresh receiver (new store, new workers), 100 events to warm it up, then
  -- HOOK_MEM_EVENTS over 8 connections; once all are handled, the workers' RSS and the store
  if not smoke then io.stderr:write("bench: 8 webhooks memory, ", HOOK_MEM_EVENTS, " events\n") end
  run(ROOT .. "/bench/webhooks/servers reset")
  local warm = hook_events(100)
  local w = kv(run("/usr/bin/python3 " .. ROOT .. "/bench/webhooks/load.py count " .. sh_quote(E.HOOK_RECEIVER_URL)
    .. " " .. sh_quote(warm) .. " 100 8"), "load.py")
  os.remove(warm)
  local drained0 = hook_drained(30)
  local before_kb, workers = worker_rss(E.HOOK_RECEIVER_PIDFILE)
  local file = hook_events(HOOK_MEM_EVENTS)
  local m = kv(run("/usr/bin/python3 " .. ROOT .. "/bench/webhooks/load.py count " .. sh_quote(E.HOOK_RECEIVER_URL)
    .. " " .. sh_quote(file) .. " " .. HOOK_MEM_EVENTS .. " 8"), "load.py")
  os.remove(file)
  local t0 = os.time()
  local drained = hook_drained(smoke and 30 or 600) and drained0
  m.drain_wait = os.time() - t0
  m.before_kb, m.workers, m.warm = before_kb, workers, w
  m.after_kb = worker_rss(E.HOOK_RECEIVER_PIDFILE)
  m.plain_kb = worker_rss(E.HOOK_PLAIN_PIDFILE)
  m.db, m.wal = file_size(E.HOOK_STORE), file_size(E.HOOK_STORE .. "-wal")
  m.done = tonumber(hook_sql("select count(*) from events where state = 'done'"))
  m.rows = tonumber(hook_sql("select count(*) from events"))
  m.drained = drained
  r.mem = m
  results.webhooks = r
  -- the smoke run proves the scenario works: every answer of the receiver a 2xx that
  -- stored its (distinct) event, every event handled
  if smoke then
    local bad = {}
    for _, t in ipairs(r.tp.receiver) do
      if t.non2xx > 0 or t.errors > 0 or t.duplicate > 0 or t.stored ~= t.ok or t.stored == 0
        or t.in_store < t.stored then bad[#bad + 1] = "wrk" end
    end
    local l = r.lat.receiver
    if l.non2xx > 0 or l.errors > 0 or l.stored ~= l.sent then bad[#bad + 1] = "latency" end
    if w.stored ~= 100 or m.stored ~= HOOK_MEM_EVENTS or not drained or m.done ~= HOOK_MEM_EVENTS + 100 then
      bad[#bad + 1] = "memory"
    end
    if #bad > 0 then
      error("bench: 8 webhooks: the receiver did not answer every event 2xx stored (" .. table.concat(bad, ", ")
        .. "): " .. cjson.encode(r), 0)
    end
  end
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
    -- (issue 26) call_many at least level with a bare multi loop over the same C handle
    targets[#targets + 1] = { "2: call_many, Lua 5.4 ≥ the bare multi loop (req/s)",
      string.format("%.2f ×", rows[1].rate / rows[3].rate), rows[1].rate >= rows[3].rate }
    -- the same comparison for the same job on each side: a list in, every reply kept; and
    -- calls made as taken, every reply dropped
    targets[#targets + 1] = { "2: call_many, Lua 5.4 ≥ the bare loop over its list, replies kept (req/s)",
      string.format("%.2f ×", rows[1].rate / rows[4].rate), rows[1].rate >= rows[4].rate }
    targets[#targets + 1] = { "2: call_stream, Lua 5.4 ≥ the bare multi loop (req/s)",
      string.format("%.2f ×", rows[5].rate / rows[3].rate), rows[5].rate >= rows[3].rate }
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
  if results.webhooks then
    local r = results.webhooks
    local function mb(kb) return string.format("%.1f MB", kb / 1024) end
    local function sum(list, k) local n = 0 for _, t in ipairs(list) do n = n + t[k] end return n end
    w("")
    w("## 8. The webhook receiver (webhooks/ngx.lua, 2 workers, SQLite store on disk) against a plain nginx "
      .. "(same 2 workers, `return 200`)")
    w("")
    w("Every request a distinct event signed by webhooks.sign. Throughput: wrk -t1 -c8 -d", HOOK_WRK_SECS,
      "s per round. Answers: summed over the rounds; stored = the reply said `\"stored\":true`.")
    w("")
    w("| server | req/s | × plain | answers 2xx / non-2xx / errors | stored / duplicate | in the store | wrk CPU µs/req | runs (req/s) |")
    w("|---|---:|---:|---|---|---:|---:|---|")
    local plain_rate = median((function() local t = {} for i, x in ipairs(r.tp.plain) do t[i] = x.rate end return t end)())
    for _, which in ipairs { "receiver", "plain" } do
      local l = r.tp[which]
      local rates, cpus = {}, {}
      for i, x in ipairs(l) do rates[i], cpus[i] = x.rate, x.cpu / x.requests * 1e6 end
      local runs = {}
      for i, x in ipairs(rates) do runs[i] = fmt_int(x) end
      w(string.format("| %s | %s | %.4f | %s / %s / %s | %s | %s | %.1f | %s |",
        which == "receiver" and "receiver" or "plain nginx (`return 200`)", fmt_int(median(rates)),
        median(rates) / plain_rate, fmt_int(sum(l, "ok")), fmt_int(sum(l, "non2xx")), fmt_int(sum(l, "errors")),
        which == "receiver" and (fmt_int(sum(l, "stored")) .. " / " .. fmt_int(sum(l, "duplicate"))) or "",
        which == "receiver" and fmt_int(sum(l, "in_store")) or "", median(cpus), table.concat(runs, " / ")))
    end
    w("")
    w("Acknowledgement latency at ", HOOK_RATE, " events/s, open loop (bench/webhooks/load.py: each request sent at "
      .. "its scheduled time, its latency measured from that time), ", ROUNDS, " alternating rounds of ",
      HOOK_RATE_SECS, " s per server, samples pooled. The generator wakes with millisecond precision: its own "
      .. "lateness (last column) is inside every latency, the plain row is the floor.")
    w("")
    w("| server | requests | p50 ms | p99 ms | max ms | 2xx / non-2xx / errors | stored | p99 per round (ms) ",
      "| generator lateness p99 per round (ms) |")
    w("|---|---:|---:|---:|---:|---|---:|---|---|")
    for _, which in ipairs { "receiver", "plain" } do
      local l = r.lat[which]
      local p99s, lates = {}, {}
      for i, x in ipairs(l.runs) do
        p99s[i], lates[i] = string.format("%.2f", x.p99_ms), string.format("%.2f", x.late_p99_ms)
      end
      w(string.format("| %s | %s | %.2f | %.2f | %.1f | %s / %s / %s | %s | %s | %s |",
        which == "receiver" and "receiver" or "plain nginx (`return 200`)", fmt_int(l.n), l.p50, l.p99, l.max,
        fmt_int(l.ok), fmt_int(l.non2xx), fmt_int(l.errors), which == "receiver" and fmt_int(l.stored) or "",
        table.concat(p99s, " / "), table.concat(lates, " / ")))
    end
    local m = r.mem
    w("")
    w("Memory: a fresh receiver (new store, new workers), 100 warm-up events, then ", fmt_int(HOOK_MEM_EVENTS),
      " events over 8 keep-alive connections (closed loop), then waited until the handler (a no-op) had every one.")
    w("")
    w("| figure | value |")
    w("|---|---:|")
    w("| receiver workers' RSS, sum of ", m.workers, ", after the 100 warm-up events | ", mb(m.before_kb), " |")
    w("| receiver workers' RSS, sum of ", m.workers, ", after ", fmt_int(HOOK_MEM_EVENTS), " more events, all handled | ",
      mb(m.after_kb), " |")
    w("| plain nginx's workers' RSS at the same moment (reference) | ", mb(m.plain_kb), " |")
    w(string.format("| store: events.db / events.db-wal (%s rows, %s done) | %.1f MB / %.1f MB |",
      fmt_int(m.rows), fmt_int(m.done), m.db / 1048576, m.wal / 1048576))
    w(string.format("| the %s events: wall, rate | %.1f s, %s/s |", fmt_int(HOOK_MEM_EVENTS), m.wall,
      fmt_int(HOOK_MEM_EVENTS / m.wall)))
    w(string.format("| their answers: 2xx / non-2xx / errors, stored; latency p50 / p99 / max | %s / %s / %s, %s; "
      .. "%.1f / %.1f / %.0f ms |", fmt_int(m.ok), fmt_int(m.non2xx), fmt_int(m.errors), fmt_int(m.stored),
      m.p50_ms, m.p99_ms, m.max_ms))
    w("| handler done with all of them, seconds after the last answer | ", m.drained and tostring(m.drain_wait) or "**no**", " |")
  end
  if results.state then
    local s = results.state
    local function runs_of(walls)
      local t = {}
      for i, x in ipairs(walls) do t[i] = string.format("%.2f", x) end
      return table.concat(t, " / ")
    end
    local function mb(kb) return string.format("%.1f MB", kb / 1024) end
    local b = s.build
    w("")
    w("## 9. The sync state: --changed-only over ", fmt_int(s.rows), " rows, batch 100, concurrency 8")
    w("")
    w(string.format("Medians of %d alternating rounds. The state (`--state`, a copy of it restored before each "
      .. "run) was built once by a real sync of the file against a fast server (the latency-bound server's "
      .. "canned reply, no latency): %.1f s, %s peak, %s Merge calls, a %.0f MB SQLite file. "
      .. "Merge calls are counted in the server's log; rows sent are the summary's merged rows.",
      #s.same.walls, b.wall, mb(b.rss), fmt_int(b.calls), b.bytes / 1048576))
    w("")
    w("| run | wall | client CPU s | peak RSS | Merge calls | rows sent | unchanged (not sent) | runs (wall s) |")
    w("|---|---:|---:|---:|---:|---:|---:|---|")
    local function row(name, x, sent)
      w(string.format("| %s | %.2f s | %.2f | %s | %s | %s | %s | %s |", name, x.wall, x.cpu, mb(x.rss),
        sent and fmt_int(x.x.calls) or "", sent and fmt_int(x.x.merged) or "", sent and fmt_int(x.x.unchanged) or "",
        runs_of(x.walls)))
    end
    row("--changed-only, nothing changed (latency-bound server)", s.same, true)
    row("--dry-run of the same file (reference)", s.dry, false)
    row(string.format("--changed-only, %s rows changed (1 %%), latency-bound server", fmt_int(s.changed)), s.one, true)
    row("full sync of the same file (no --changed-only), latency-bound server", s.full, true)
    w("")
    w(string.format("Nothing changed: --changed-only takes %.2f × the dry run's wall (%.2f × its CPU). "
      .. "1 %% changed: --changed-only takes %.2f × the full sync's wall, with %.2f × its Merge calls.",
      s.same.wall / math.max(s.dry.wall, 0.01), s.same.cpu / math.max(s.dry.cpu, 0.01), s.one.wall / s.full.wall,
      s.one.x.calls / math.max(1, s.full.x.calls)))
    for _, why in ipairs(s.bad) do w("") w("**Unexpected:** ", why) end
    targets[#targets + 1] = { "9: --changed-only, nothing changed: wall < 2 × dry run",
      string.format("%.2f ×", s.same.wall / math.max(s.dry.wall, 0.01)), s.same.wall < 2 * s.dry.wall }
    targets[#targets + 1] = { "9: --changed-only, nothing changed: peak RSS < 100 MB", mb(s.same.rss),
      s.same.rss / 1024 < 100 }
  end
  if results.metrics then
    local m = results.metrics
    w("")
    w("## 10. Metrics on the sequential call: on and off, side by side")
    w("")
    w(string.format("client:call(\"contacts\", \"Merge\") in a loop (scenario 1's, Lua 5.4) with `metrics = true` "
      .. "(the default) and `metrics = false`, alternating, medians of %d rounds; instructions per call exact "
      .. "under callgrind: (I(%d calls) - I(%d calls)) / %d.", ROUNDS, METRICS_N2, METRICS_N1, METRICS_N2 - METRICS_N1))
    w("")
    w("| protocol | metrics | calls/s | CPU µs/call | instructions/call |")
    w("|---|---|---:|---:|---:|")
    for _, p in ipairs { "HTTP", "HTTPS" } do
      for _, side in ipairs { "on", "off" } do
        local r = m.rows[p .. side]
        w(string.format("| %s | %s | %s | %.1f | %s |", p, side, fmt_int(median(r.rate)), median(r.cpu),
          fmt_int(m.ir[p .. side])))
      end
      local on, off = m.ir[p .. "on"], m.ir[p .. "off"]
      local cost = (on - off) / off
      w(string.format("| %s | cost | %+.1f %% | %+.1f %% | %+.2f %% (%s) |", p,
        (median(m.rows[p .. "off"].rate) / median(m.rows[p .. "on"].rate) - 1) * 100,
        (median(m.rows[p .. "on"].cpu) / median(m.rows[p .. "off"].cpu) - 1) * 100, cost * 100,
        fmt_int(on - off)))
      targets[#targets + 1] = { "10: metrics on, " .. p .. ": at most 3 % more instructions per call",
        string.format("%+.2f %%", cost * 100), cost <= 0.03 }
    end
  end
  if results.instructions then
    local r = results.instructions
    local function row(name, v, ref)
      w(string.format("| %s | %s | %s |", name, fmt_int(v), ref and string.format("%.2f", v / ref) or ""))
    end
    w("")
    w("## 11. Instruction counts (callgrind)")
    w("")
    w(string.format("Instructions per unit, exact: (I(n2) - I(n1)) / (n2 - n1) with n = %d/%d calls, %d/%d "
      .. "calls of call_many, %d/%d rows, %d/%d JSON operations; the client's user space only "
      .. "(libcurl, OpenSSL and Lua counted; the kernel and the server not). Ratios are to the bare Lua "
      .. "loop of the same table.", IR.seq[1], IR.seq[2], IR.many[1], IR.many[2], IR.rows[1], IR.rows[2],
      IR.json[1], IR.json[2]))
    for _, p in ipairs { "HTTP", "HTTPS" } do
      w("")
      w("| sequential call, " .. p .. " | instructions/call | × bare loop |")
      w("|---|---:|---:|")
      local list = r.seq[p]
      for _, x in ipairs(list) do row(x[1], x[2], list[3][2]) end
      local ratio = list[1][2] / list[3][2]
      targets[#targets + 1] = { "11: client:call, Lua 5.4, " .. p .. ": <= 1.10 x the bare loop's instructions",
        string.format("%.2f ×", ratio), ratio <= 1.10 }
    end
    w("")
    w("| call_many, HTTP, concurrency 8 | instructions/call | × bare multi loop |")
    w("|---|---:|---:|")
    for _, x in ipairs(r.many) do row(x[1], x[2], r.many[3][2]) end
    local ratio = r.many[1][2] / r.many[3][2]
    targets[#targets + 1] = { "11: call_many, Lua 5.4: <= 1.10 x the bare multi loop's instructions",
      string.format("%.2f ×", ratio), ratio <= 1.10 }
    ratio = r.many[5][2] / r.many[3][2]
    targets[#targets + 1] = { "11: call_stream, Lua 5.4: <= 1.10 x the bare multi loop's instructions",
      string.format("%.2f ×", ratio), ratio <= 1.10 }
    w("")
    w("| one sync row (bin/dialoginsight) | instructions/row | |")
    w("|---|---:|---:|")
    for _, x in ipairs(r.rows) do row(x[1], x[2]) end
    w("")
    w("| JSON, Lua 5.4 | core | lua-cjson | × cjson |")
    w("|---|---:|---:|---:|")
    for _, x in ipairs(r.json) do
      w(string.format("| %s | %s | %s | %.2f |", x[1], fmt_int(x[2]), fmt_int(x[3]), x[2] / x[3]))
    end
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
if wanted(8) then scenario_webhooks() end
if wanted(9) then scenario_state() end
if wanted(10) then scenario_metrics() end
if wanted(11) then scenario_instructions() end

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
