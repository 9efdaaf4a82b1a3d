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

--- The store of metrics/init.lua over a shared dict: dict:incr is atomic across workers.
-- @local
function M.store(dict)
  return {
    incr = function(_, k, n)
      local _, err = dict:incr(k, n, 0)
      if err and not warned then
        warned = true
        log.warn("dialoginsight: WARNING: lua_shared_dict " .. metrics.DICT .. " cannot count ("
          .. tostring(err) .. "): metrics are missing counts; give it more room")
      end
    end,
    keys = function() return dict:get_keys(0) end,
    get = function(_, k) return dict:get(k) end,
  }
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
