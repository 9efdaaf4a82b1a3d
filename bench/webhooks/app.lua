-- The receiver of bench scenario 8 (bench/webhooks/servers): webhooks/ngx.lua with a
-- handler that does nothing, so the figures are the receiver's own (verify, parse, one
-- INSERT with synchronous = FULL, the runner's claim and done). Defaults otherwise
-- (interval 1 s, claim_size 20).
local M = {}
local home

function M.init(opts)
  home = require("dialoginsight.webhooks.ngx").new {
    secret = opts.secret, store = opts.store, project = 1001,
    handler = function() end,
  }
end

function M.start() home:start() end
function M.serve() return home:serve() end

return M
