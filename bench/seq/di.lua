--- Scenario 1, our client: client:call("contacts", "Merge", ...) in a loop
-- on one keep-alive connection.  The same script runs under lua5.4, luajit
-- and the host (bin/dialoginsight run bench/seq/di.lua), where `di` is the
-- host's global.  The shared limiter is on, with a rate far above the need,
-- so its cost is part of every call as in real use.
package.path = (os.getenv("BENCH_ROOT") or ".") .. "/bench/seq/?.lua;" .. package.path
local common = require "common"
local di = rawget(_G, "di") or require "dialoginsight"
local core = require "dialoginsight.core"

local client = di.new {
  key_id = common.key_id, key = common.key, project = common.project,
  base_url = common.url, ca_file = common.ca_file, allow_http = true,
  rate = 1e6, burst = 1e6, limiter_dir = common.limiter_dir,
  -- scenario 10 compares the two; metrics are on by default
  metrics = os.getenv("BENCH_METRICS") ~= "0",
}
local params = common.params()
common.run(function()
  local r, err = client:call("contacts", "Merge", params)
  if not r then error(tostring(err), 0) end
  local st = r.Records[1].Status -- (the static server: Created; the sandbox, after the first: Updated)
  if st ~= "Created" and st ~= "Updated" then error("unexpected reply", 0) end
end, core.now)
client:close()
