-- One OS process of the shared-limiter specs: from monotonic time `start`
-- until `stop`, calls projects.List as fast as the shared limiter allows, and
-- prints the monotonic start time of each call, one per line.
-- usage: limiter_worker.lua START STOP RATE BURST LIMITER_DIR [LIMITER_URL [HOSTS]]
-- (LIMITER_URL: share the limit through Redis, limiter/redis.lua)
local di = require "dialoginsight"
local core = require "dialoginsight.core"
local sbx = require "support.sandbox"

local start, stop = tonumber(arg[1]), tonumber(arg[2])
local c = di.new(sbx.settings {
  rate = tonumber(arg[3]), burst = tonumber(arg[4]), limiter_dir = arg[5],
  limiter_url = arg[6] ~= "" and arg[6] or nil, hosts = tonumber(arg[7]),
  retries = 0,
})
core.sleep(start - core.now())
local req = assert(c:prepare("projects", "List", {}))
local engine, out, decisions = c.engine, {}, 0
local sl = engine:state(req)
while true do
  -- the call path's own limiter step, then one attempt: the time printed is
  -- the moment the limiter let the call go
  local wait = engine:slot(sl, core.now())
  decisions = decisions + 1
  if wait > 0 then
    -- a wait past the window ends it (a frozen limiter fails the spec, it
    -- does not hang it)
    if core.now() + wait >= stop then break end
    core.sleep(wait)
  else
    local t = core.now()
    if t >= stop then break end
    sl.attempts = 1
    local r, err = engine:settle(sl, t, c.transport:post(req.url, req.body))
    if not r then io.stderr:write(tostring(err), "\n"); os.exit(1) end
    out[#out + 1] = string.format("%.6f", t)
  end
end
print(table.concat(out, "\n"))
-- how often it asked the limiter, for a spec that wants to know (stderr)
if os.getenv("DI_WORKER_DECISIONS") then io.stderr:write("decisions ", decisions, "\n") end
