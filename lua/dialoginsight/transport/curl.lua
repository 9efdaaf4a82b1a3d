--- The libcurl transport (docs/transport.md): the C core's session, with the scheduler's clock
-- and sleep.  Used everywhere but inside nginx (transport/ngx.lua).
local core = require "dialoginsight.core"

local M = {}

local Transport = {}
Transport.__index = Transport

function M.new(settings)
  return setmetatable({
    session = core.session {
      ca_file = settings.ca_file,
      verify = settings.tls_verify,
      timeout = settings.timeout,
      connect_timeout = settings.connect_timeout,
      user_agent = settings.user_agent,
      http2 = settings.http2,
      max_reply_bytes = settings.max_reply_bytes,
    },
  }, Transport)
end

--- post(url, body, timeout, fresh) -> a reply table (docs/transport.md).
function Transport:post(url, body, timeout, fresh)
  return self.session:post(url, body, timeout, fresh)
end

--- A handle for concurrent calls: add, perform, pending, close.
function Transport:multi(concurrency)
  return self.session:multi(concurrency)
end

-- (t:now() passes t to the C function, which ignores its arguments: one call less
-- on every call's path)
Transport.now = core.now
function Transport:sleep(s) return core.sleep(s) end
function Transport:close() return self.session:close() end

return M
