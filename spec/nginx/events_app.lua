-- The webhook receiver of spec/nginx/webhooks_spec.lua, in a real nginx: each handled
-- event is a line of handled.log ("id retry pid type idContact EMail"), each test event one
-- of tests.log; an
-- event whose EMail is fail@example.com fails while the file fail_switch exists.
local M = {}

local home, dir

local function append(name, line)
  local f = assert(io.open(dir .. "/" .. name, "a"))
  f:write(line, "\n")
  f:close()
end

local function handle(e)
  if e.fields.EMail == "fail@example.com" then
    local f = io.open(dir .. "/fail_switch")
    if f then f:close(); error("the CRM refused " .. e.id) end
  end
  ngx.sleep(0.002) -- a handler that takes a moment: a kill may land mid-way
  append("handled.log", table.concat({ e.id, e.retry and 1 or 0, ngx.worker.pid(), e.type,
    tostring(e.contact), tostring(e.fields.EMail) }, " "))
end

function M.init(opts)
  dir = opts.dir
  home = require("dialoginsight.webhooks.ngx").new {
    secret = opts.secret, store = dir .. "/events.db", handler = handle,
    on_test = function(e) append("tests.log", e.id) end,
    attempts = 2, backoff = 0.2, lease = 1, interval = 0.2, project = opts.project,
    limiter_url = opts.limiter_url, name = opts.name, header = opts.header, algorithm = opts.algorithm,
    encoding = opts.encoding, prefix = opts.prefix,
  }
end

function M.start() home:start() end
function M.serve() return home:serve() end

return M
