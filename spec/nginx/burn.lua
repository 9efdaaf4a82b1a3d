-- The shared-limit load of spec/nginx: run by init_worker_by_lua in every
-- worker.  Each worker waits for /t/burn_start, then calls projects.List
-- back to back through the example's client (whose shared limiter holds it
-- back with ngx.sleep) until the window ends, when the calling thread is
-- killed.  The sandbox's request log counts what really went out.
local app = require "di_example.app"

local function run(premature)
  if premature then return end
  local dict = ngx.shared.burn
  while not dict:get("start") do
    if ngx.worker.exiting() then return end
    ngx.sleep(0.02)
  end
  local start, seconds = dict:get("start"), dict:get("seconds")
  ngx.update_time()
  if start > ngx.now() then ngx.sleep(start - ngx.now()) end
  local client = app.client()
  local n = 0
  local th = ngx.thread.spawn(function()
    while true do
      local r = client:call("projects", "List", nil, { retries = 0 })
      n = n + 1
      if not r then dict:incr("errors", 1, 0) end
    end
  end)
  ngx.update_time()
  ngx.sleep(math.max(0, start + seconds - ngx.now()))
  ngx.thread.kill(th)
  dict:set("worker:" .. ngx.worker.pid(), n)
  dict:incr("done", 1, 0)
end

ngx.timer.at(0, run)
