--- Counters and histograms of the library's work, for Prometheus (docs/metrics.md).
-- One registry per process (`default`): every client, the sync and the webhook
-- receiver count into it.  Inside nginx, when `lua_shared_dict dialoginsight_metrics`
-- is declared, it lives there and every worker counts into one (metrics/ngx.lua serves it).
-- @module dialoginsight.metrics
-- @usage local m = client:metrics()                     -- a snapshot
-- print(di.metrics.value(m, "dialoginsight_calls_total", { outcome = "ok" }))
-- io.write(di.metrics.render(m))                       -- Prometheus' text format
local M = {}

--- The upper bounds of the duration histograms' buckets, in seconds.
M.BUCKETS = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 }

--- Every family: name, type, its labels in order, help.  The one list: the hot path
-- counts by index (C_* below), the rendering and docs/metrics.md read it.
-- @table FAMILIES
M.FAMILIES = {
  { name = "dialoginsight_calls_total", type = "counter", labels = { "service", "method", "outcome" },
    help = "Calls ended, by outcome: ok, or the error kind (a call may make several attempts)" },
  { name = "dialoginsight_attempts_total", type = "counter",
    labels = { "service", "method", "outcome", "code" },
    help = "HTTP attempts, by outcome and the reply's status class (code none: no reply)" },
  { name = "dialoginsight_call_duration_seconds", type = "histogram", labels = { "service", "method" },
    help = "Whole calls, from start to end: attempts, limiter waits and back-offs" },
  { name = "dialoginsight_retries_total", type = "counter", labels = { "service", "method", "kind" },
    help = "Retries, by the kind of the failure retried" },
  { name = "dialoginsight_rate_limited_total", type = "counter", labels = { "service", "method" },
    help = "Replies that were the service's call limit (429 or its message)" },
  { name = "dialoginsight_unknown_outcome_total", type = "counter", labels = { "service", "method" },
    help = "Calls that failed after a send that may have been acted on (err.outcome unknown)" },
  { name = "dialoginsight_limiter_waits_total", type = "counter", labels = { "priority" },
    help = "Calls the rate limiter held back" },
  { name = "dialoginsight_limiter_wait_seconds_total", type = "counter", labels = { "priority" },
    help = "Seconds the rate limiter asked calls to wait" },
  { name = "dialoginsight_limiter_fallback", type = "gauge", labels = {},
    help = "Clients limiting on their own because Redis is away" },
  { name = "dialoginsight_limiter_fallback_transitions_total", type = "counter", labels = { "to" },
    help = "Switches of the limiter: to fallback (Redis away) or to redis (back)" },
  { name = "dialoginsight_sync_rows_total", type = "counter", labels = { "outcome" },
    help = "Rows of `dialoginsight sync`, by outcome: created, updated, rejected, unchanged, superseded" },
  { name = "dialoginsight_webhook_events_total", type = "counter", labels = { "stage", "result" },
    help = "Webhook events: received (stored, duplicate, or why refused) and handled" },
}
local CALLS, ATTEMPTS, DURATION, RETRIES, LIMITED, UNKNOWN, WAITS, WAITED,
  FALLBACK, SWITCHES, ROWS, EVENTS = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12

local BY_NAME = {}
for i, f in ipairs(M.FAMILIES) do BY_NAME[f.name] = i end

-- The status class of an HTTP status (nil: no reply).
local CODE = { "1xx", "2xx", "3xx", "4xx", "5xx" }
local function code_of(status)
  return status and CODE[math.floor(status / 100)] or "none"
end

-- A label value as the text format writes it between quotes.
local function escape(v)
  return (tostring(v):gsub("[\\\"\n]", { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" }))
end

-- The key of a series: the text format's own `name{a="x",b="y"}`, so that a store
-- holds what is rendered (extra: one more label, the histograms' le).
local function series_key(name, labels, values, extra)
  local parts = {}
  for i, l in ipairs(labels) do parts[i] = l .. '="' .. escape(values[i]) .. '"' end
  if extra then parts[#parts + 1] = extra end
  if #parts == 0 then return name end
  return name .. "{" .. table.concat(parts, ",") .. "}"
end

local Registry = {}
Registry.__index = Registry

local BUCKETS, NB = M.BUCKETS, #M.BUCKETS
-- The buckets' bounds and +Inf's, so that finding a duration's bucket tests one bound per step
local BOUNDS = {}
for j = 1, NB do BOUNDS[j] = BUCKETS[j] end
BOUNDS[NB + 1] = math.huge

--- A registry over a store: { incr = function(self, key, n), keys = function(self) -> list,
-- get = function(self, key) -> number }; nil: a table in this process, counted into
-- directly (the hot path's common case: no call through the store).
-- @local
function M.new(store)
  local keys = {}
  for i in ipairs(M.FAMILIES) do keys[i] = {} end
  -- the counts (or keys) of each method, by service and method name: every client's
  -- registry entry of a method (each client may have its own) counts into one, kept
  -- after the client is gone
  -- (tick: set by cli/textfile.lua; false, not nil, so that each call finds it in the table)
  local self = setmetatable({ store = store, keys = keys, entries = {}, methods = 0, tick = false },
    Registry)
  if store == nil then
    local values, all = {}, nil
    self.values = values
    self.store = {
      incr = function(_, k, n) values[k] = (values[k] or 0) + n end,
      keys = function()
        all = self:series()
        local list = {}
        for k in pairs(all) do list[#list + 1] = k end
        return list
      end,
      get = function(_, k) return all[k] end,
    }
  end
  return self
end

-- The key of family f's series with label values a, b, c, d (a histogram: its buckets'
-- keys, 1 to NB + 1 (+Inf), and sum's), made once and kept in nested tables by value.
local function key(self, f, a, b, c, d)
  local node = self.keys[f]
  local fam = M.FAMILIES[f]
  local n = #fam.labels
  local v = { a, b, c, d }
  for i = 1, n - 1 do
    local nxt = node[v[i]]
    if not nxt then nxt = {}; node[v[i]] = nxt end
    node = nxt
  end
  local last = n == 0 and "" or v[n]
  local k = node[last]
  if not k then
    if fam.type == "histogram" then
      k = {}
      for j, le in ipairs(M.BUCKETS) do
        k[j] = series_key(fam.name .. "_bucket", fam.labels, v, 'le="' .. le .. '"')
      end
      k[NB + 1] = series_key(fam.name .. "_bucket", fam.labels, v, 'le="+Inf"')
      k.sum = series_key(fam.name .. "_sum", fam.labels, v)
    else
      k = series_key(fam.name, fam.labels, v)
    end
    node[last] = k
  end
  return k
end

function Registry:add(f, n, a, b, c, d)
  self.store:incr(key(self, f, a, b, c, d), n)
end

-- The call path's counts (call/scheduler.lua) ---------------------------------------
-- The hot path costs a few table reads and adds (bench scenario 10 measures it): in
-- this process's registry, each method's counts hang off its registry entry as plain
-- numbers, made into series when a snapshot is taken; in a shared dict (nginx), each
-- count is one dict:incr of a key made once.

--- The most methods counted apart: a method the registry does not know is sent, and
-- counted, under the name it was called by; past this many, the rest count as
-- service "other", method "other" (a name from user data must not grow the series
-- without end).
M.MAX_METHODS = 200

local function new_entry(self, sv, m)
  local e = { attempts = {}, calls = {}, sv = sv, m = m }
  if self.values then
    e.hist = { sum = 0 }
    for j = 1, NB + 1 do e.hist[j] = 0 end
  else
    e.hist = key(self, DURATION, sv, m)
  end
  return e
end

local function of_entry(self, entry)
  local sv, m = entry.service, entry.method
  local by = self.entries[sv]
  local e = by and by[m]
  if e then return e end
  if self.methods >= M.MAX_METHODS then
    sv, m = "other", "other"
    by = self.entries[sv]
    e = by and by[m]
    if e then return e end
  end
  if not by then by = {}; self.entries[sv] = by end
  e = new_entry(self, sv, m)
  by[m] = e
  self.methods = self.methods + 1
  return e
end

--- An attempt settled: entry (the registry's), outcome ("ok" or the error kind), status.
function Registry:attempt(entry, outcome, status)
  local methods = self.entries[entry.service]
  local e = methods and methods[entry.method] or of_entry(self, entry)
  local by = e.attempts[outcome]
  if not by then by = {}; e.attempts[outcome] = by end
  local s = status or 0
  if self.values then
    by[s] = (by[s] or 0) + 1
  else
    local k = by[s]
    if not k then
      k = key(self, ATTEMPTS, e.sv, e.m, outcome, code_of(status))
      by[s] = k
    end
    self.store:incr(k, 1)
  end
  if outcome == "rate_limited" then self:add(LIMITED, 1, e.sv, e.m) end
end

--- A call ended: its outcome, seconds from its start, whether it may have been acted on,
-- and ok: the status of its last attempt when that one went well and is counted here, with
-- its call (call/scheduler.lua's settle leaves it to this one registry call, issue 26).
function Registry:call(entry, outcome, seconds, unknown, ok)
  local methods = self.entries[entry.service]
  local e = methods and methods[entry.method] or of_entry(self, entry)
  local j = 1
  while seconds > BOUNDS[j] do j = j + 1 end
  local calls, h = e.calls, e.hist
  if ok then
    local by = self.values and e.attempts.ok
    if by then by[ok] = (by[ok] or 0) + 1 else self:attempt(entry, "ok", ok) end
  end
  if self.values then
    calls[outcome] = (calls[outcome] or 0) + 1
    h[j] = h[j] + 1 -- buckets are kept apart, made cumulative when rendered
    h.sum = h.sum + seconds
  else
    local k = calls[outcome]
    if not k then
      k = key(self, CALLS, e.sv, e.m, outcome)
      calls[outcome] = k
    end
    local store = self.store
    store:incr(k, 1)
    store:incr(h[j], 1)
    store:incr(h.sum, seconds)
  end
  if unknown then self:add(UNKNOWN, 1, e.sv, e.m) end
  local tick = self.tick
  if tick then tick() end
end

-- Every count of this process's registry as series: { [key] = value }.
function Registry:series()
  local all = {}
  for k, v in pairs(self.values) do all[k] = v end
  local function add(k, n) all[k] = (all[k] or 0) + n end
  for sv, methods in pairs(self.entries) do
    for m, e in pairs(methods) do
      for outcome, by in pairs(e.attempts) do
        for status, n in pairs(by) do
          add(key(self, ATTEMPTS, sv, m, outcome, code_of(status ~= 0 and status or nil)), n)
        end
      end
      for outcome, n in pairs(e.calls) do add(key(self, CALLS, sv, m, outcome), n) end
      local hk = key(self, DURATION, sv, m)
      for j = 1, NB + 1 do
        if e.hist[j] > 0 then add(hk[j], e.hist[j]) end
      end
      if next(e.calls) then add(hk.sum, e.hist.sum) end -- (counted together in call())
    end
  end
  return all
end

function Registry:retry(entry, kind)
  local e = of_entry(self, entry)
  self:add(RETRIES, 1, e.sv, e.m, kind)
end

function Registry:wait(priority, seconds)
  self:add(WAITS, 1, priority)
  self:add(WAITED, seconds, priority)
end

--- The limiter left Redis for its fallback (active true) or came back; gone: a client
-- closed while on its fallback (the gauge only).
function Registry:fallback(active, gone)
  self:add(FALLBACK, active and 1 or -1)
  if not gone then self:add(SWITCHES, 1, active and "fallback" or "redis") end
end

--- Rows of a sync batch by outcome (cli/sync/init.lua).
function Registry:rows(outcome, n)
  if n > 0 then self:add(ROWS, n, outcome) end
end

--- A webhook event: stage "received" or "handled", and its result.
function Registry:event(stage, result, n)
  if (n or 1) > 0 then self:add(EVENTS, n or 1, stage, result) end
end

-- Snapshots and the text format -----------------------------------------------------

-- The label values of a key, as a table (the text format's escapes undone).
local UNESCAPE = { ["\\"] = "\\", ['"'] = '"', n = "\n" }
local function parse_key(k)
  local name, body = k:match("^([%w_]+){(.*)}$")
  if not name then return k, {} end
  local labels, i = {}, 1
  while true do
    local l, j = body:match('^([%w_]+)="()', i)
    if not l then break end
    local v = {}
    while true do
      local ch = body:sub(j, j)
      if ch == "\\" then
        local nx = body:sub(j + 1, j + 1)
        v[#v + 1] = UNESCAPE[nx] or nx
        j = j + 2
      elseif ch == '"' or ch == "" then
        break
      else
        v[#v + 1] = ch
        j = j + 1
      end
    end
    labels[l] = table.concat(v)
    i = j + 2 -- past the quote and the comma
  end
  return name, labels
end

-- The family of a sample's name, and its suffix (bucket, sum, count).
local function family_of(name)
  local i = BY_NAME[name]
  if i then return i, nil end
  local base, suffix = name:match("^(.-)_(%a+)$")
  i = base and BY_NAME[base]
  if i and M.FAMILIES[i].type == "histogram" then return i, suffix end
  return nil
end

-- A histogram's samples, series by series: every bucket by bound, made cumulative (the
-- store holds only those counted into, each on its own), then _sum and _count.
local function histogram_samples(f, samples)
  local series, ids = {}, {}
  for _, s in ipairs(samples) do
    local v = {}
    for j, l in ipairs(f.labels) do v[j] = s.labels[l] or "" end
    local id = table.concat(v, "\0")
    local h = series[id]
    if not h then h = { labels = v, buckets = {} }; series[id] = h; ids[#ids + 1] = id end
    local suffix = s.name:sub(#f.name + 2)
    if suffix == "bucket" then h.buckets[s.labels.le] = s.value else h[suffix] = s end
  end
  table.sort(ids)
  local out = {}
  for _, id in ipairs(ids) do
    local h, run = series[id], 0
    local bounds = {}
    for j, le in ipairs(M.BUCKETS) do bounds[j] = tostring(le) end
    bounds[#bounds + 1] = "+Inf"
    for _, le in ipairs(bounds) do
      run = run + (h.buckets[le] or 0)
      local labels = { le = le }
      for j, l in ipairs(f.labels) do labels[l] = h.labels[j] end
      out[#out + 1] = { name = f.name .. "_bucket", labels = labels, value = run }
    end
    local labels = {}
    for j, l in ipairs(f.labels) do labels[l] = h.labels[j] end
    out[#out + 1] = { name = f.name .. "_sum", labels = labels, value = h.sum and h.sum.value or 0 }
    out[#out + 1] = { name = f.name .. "_count", labels = labels, value = run } -- (its +Inf bucket)
  end
  return out
end

--- The registry's counts now: { families = { { name, type, help, labels, samples = {
-- { name, labels = {...}, value }, ... } }, ... }, [name] = its family }.  Buckets are
-- cumulative, as in the text format.
-- @local
function Registry:snapshot()
  local store, fams = self.store, {}
  for i, f in ipairs(M.FAMILIES) do
    fams[i] = { name = f.name, type = f.type, help = f.help, labels = f.labels, samples = {} }
  end
  local keys = store:keys()
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = store:get(k)
    local name, labels = parse_key(k)
    local i = family_of(name)
    if i and type(v) == "number" then
      table.insert(fams[i].samples, { name = name, labels = labels, value = v })
    end
  end
  for _, f in ipairs(fams) do
    if f.type == "histogram" then f.samples = histogram_samples(f, f.samples) end
    -- a family without labels (the fallback gauge) is 0 until something counts
    if #f.labels == 0 and #f.samples == 0 then
      f.samples[1] = { name = f.name, labels = {}, value = 0 }
    end
  end
  local snap = { families = fams }
  for _, f in ipairs(fams) do snap[f.name] = f end
  return snap
end

-- A number as the text format writes it.
local function number(v)
  if v ~= v then return "NaN" end
  if v == math.huge then return "+Inf" end
  if v == -math.huge then return "-Inf" end
  if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return string.format("%d", v) end
  local short = string.format("%.15g", v)
  return tonumber(short) == v and short or string.format("%.17g", v)
end

--- Prometheus' text format (version 0.0.4) of a snapshot.
-- @tparam table snap a snapshot (`client:metrics()`)
-- @treturn string the text, ending with a newline
function M.render(snap)
  local out = {}
  for _, f in ipairs(snap.families) do
    out[#out + 1] = "# HELP " .. f.name .. " " .. f.help
    out[#out + 1] = "# TYPE " .. f.name .. " " .. f.type
    for _, s in ipairs(f.samples) do
      local names = {}
      for _, l in ipairs(f.labels) do names[#names + 1] = l end
      if s.labels.le then names[#names + 1] = "le" end
      local parts = {}
      for _, l in ipairs(names) do
        if s.labels[l] ~= nil then parts[#parts + 1] = l .. '="' .. escape(s.labels[l]) .. '"' end
      end
      local labels = #parts > 0 and ("{" .. table.concat(parts, ",") .. "}") or ""
      out[#out + 1] = s.name .. labels .. " " .. number(s.value)
    end
  end
  return table.concat(out, "\n") .. "\n"
end

--- The sum of a family's samples whose labels match (a histogram: its _count).
-- @tparam table snap a snapshot
-- @tparam string name the family's name
-- @tparam[opt] table labels the labels to match
-- @treturn number the sum, 0 when none matches
-- @usage di.metrics.value(client:metrics(), "dialoginsight_calls_total", { outcome = "timeout" })
function M.value(snap, name, labels)
  local f = snap[name]
  if not f then error("dialoginsight: metrics: no family " .. tostring(name), 2) end
  local total = 0
  for _, s in ipairs(f.samples) do
    local ok = f.type ~= "histogram" or s.name == name .. "_count"
    for l, v in pairs(labels or {}) do
      if s.labels[l] ~= v then ok = false end
    end
    if ok then total = total + s.value end
  end
  return total
end

local default

--- The registry of this process (in nginx, of every worker when `lua_shared_dict
-- dialoginsight_metrics` is declared: metrics/ngx.lua).
-- @local
function M.default()
  if default == nil then
    local ngx = rawget(_G, "ngx")
    local dict = type(ngx) == "table" and type(ngx.shared) == "table"
      and ngx.shared[M.DICT]
    default = M.new(dict and require("dialoginsight.metrics.ngx").store(dict) or nil)
  end
  return default
end

--- The lua_shared_dict that holds the metrics of every nginx worker.
M.DICT = "dialoginsight_metrics"

return M
