--- The metrics of every nginx worker, in `lua_shared_dict dialoginsight_metrics`, and the
-- handler of `location /metrics` (docs/metrics.md).
-- @module dialoginsight.metrics.ngx
-- @usage -- nginx.conf, http{}:  lua_shared_dict dialoginsight_metrics 1m;
-- location = /metrics { content_by_lua_block { require("dialoginsight.metrics.ngx").serve() } }
local metrics = require "dialoginsight.metrics"
local log = require "dialoginsight.log"

local M = {}

-- Once per worker: a full dict is one event, however many counts it drops.
local warned = false

local function full(err)
  if warned then return end
  warned = true
  log.warn("dialoginsight: WARNING: lua_shared_dict " .. metrics.DICT .. " is full (" .. tostring(err)
    .. "): new series are not counted (those counted go on); give it more room")
end

-- The gauge of Redis fallbacks counts clients; a worker's share is kept under its pid
-- ("name@pid"), and a scrape sums the live workers' only: a worker that exited (a
-- reload, a crash) no longer counts, whatever it had not taken back.
local GAUGE = "dialoginsight_limiter_fallback"
local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if f then f:close() end
  return f ~= nil
end

--- The store of metrics/init.lua over a shared dict: dict:incr is atomic across workers.
-- A new series is added with safe_add, which never evicts another series when the dict
-- is full (incr with an initial value would, silently: counters would restart at 0).
-- @local
function M.store(dict)
  local store = {}
  function store.incr(_, k, n)
    if k == GAUGE then k = k .. "@" .. ngx.worker.pid() end
    local _, err = dict:incr(k, n)
    if err == "not found" then
      local ok, why = dict:safe_add(k, n)
      if not ok and why == "exists" then _, err = dict:incr(k, n) -- (another worker, just now)
      elseif not ok then err = why
      else err = nil end
    end
    if err then full(err) end
  end
  function store.keys()
    local list, gauge = {}, nil
    for _, k in ipairs(dict:get_keys(0)) do
      local pid = k:match("^" .. GAUGE .. "@(%d+)$")
      if pid then
        if alive(pid) then gauge = (gauge or 0) + (dict:get(k) or 0) else dict:delete(k) end
      else
        list[#list + 1] = k
      end
    end
    store.gauge = gauge
    if gauge then list[#list + 1] = GAUGE end
    return list
  end
  function store.get(_, k)
    if k == GAUGE then return store.gauge end
    return dict:get(k)
  end
  return store
end

--- Answers a scrape: the metrics of every worker in Prometheus' text format; 500 and
-- why when the shared dict is not declared (per-worker counts would mislead).
function M.serve()
  if not ngx.shared[metrics.DICT] then
    ngx.status = 500
    ngx.header["Content-Type"] = "text/plain; charset=utf-8"
    ngx.say("dialoginsight: metrics need `lua_shared_dict ", metrics.DICT, " 1m;` in nginx.conf's http block")
    return
  end
  ngx.header["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
  ngx.print(metrics.render(metrics.default():snapshot()))
end

return M
