--- De-duplication across hosts, through the Redis of limiter_url: one host only stores an
-- event.  A host first claims the event's id ("pending", for CLAIM_S), stores it, then marks
-- it "stored" for the ttl.  A delivery that finds it "stored" is a duplicate (2xx, nothing
-- stored); one that finds it "pending" gets 503, so Dialog Insight sends it again after the
-- other host has stored it or died.  When Redis fails, the host stores the event alone:
-- an event may then be handled on two hosts, never lost (SECURITY.md).
-- @module dialoginsight.webhooks.shared
local redis = require "dialoginsight.limiter.redis"
local log = require "dialoginsight.log"

local M = {}

M.CLAIM_S = 30        -- seconds a claim holds, should its host die before storing
M.BUDGET = 0.25       -- seconds per command: a receiver must answer fast
M.WARN_EVERY = 60

local Shared = {}
Shared.__index = Shared

--- url: limiter_url; ttl: seconds a stored id is remembered; connect: function(url, timeout)
-- (redis.connect_core, or connect_ngx inside nginx).  nil when url is nil.
function M.new(url, ttl, connect, prefix)
  if url == nil then return nil end
  local parsed, why = redis.parse_url(url)
  if not parsed then error("dialoginsight: webhooks: option 'limiter_url' " .. why, 0) end
  return setmetatable({ url = parsed, ttl = ttl, connect = connect, prefix = prefix,
    last_warn = -math.huge }, Shared)
end

function Shared:warn(msg)
  local t = os.time()
  if t - self.last_warn < M.WARN_EVERY then return end
  self.last_warn = t
  log.warn("dialoginsight: webhooks: Redis " .. msg .. ": de-duplicating on this host alone "
    .. "(an event may be handled on two hosts, none is lost)")
end

function Shared:command(...)
  if not self.c then
    local c, why = self.connect(self.url, M.BUDGET)
    if not c then return nil, why or "not reachable from this phase", "io" end
    if self.url.password then
      local ok = self.url.user and c:command(M.BUDGET, "AUTH", self.url.user, self.url.password)
        or not self.url.user and c:command(M.BUDGET, "AUTH", self.url.password)
      if ok ~= "OK" then c:close(); return nil, "AUTH refused", "redis" end
    end
    if self.url.db ~= 0 then
      local ok = c:command(M.BUDGET, "SELECT", tostring(self.url.db))
      if ok ~= "OK" then c:close(); return nil, "SELECT refused", "redis" end
    end
    self.c = c
  end
  local v, e, kind = self.c:command(M.BUDGET, ...)
  if kind == "io" then self.c:close(); self.c = nil end
  return v, e, kind
end

local function key(self, id) return self.prefix .. id end

--- Claims id for this host: "mine" (store it, then confirm), "stored" (a duplicate),
-- "busy" (another host is storing it: answer 503), or "alone" (Redis failed: store it).
function Shared:claim(id, token)
  local e
  for _ = 1, 2 do -- twice: the other's claim may expire between SET and GET
    local v
    v, e = self:command("SET", key(self, id), "pending:" .. token, "NX", "PX", tostring(M.CLAIM_S * 1000))
    if v == "OK" then return "mine" end
    if v ~= nil or e ~= nil then break end -- not a nil reply: an error
    local now
    now, e = self:command("GET", key(self, id))
    if now == "stored" then return "stored" end
    if type(now) == "string" and now:sub(1, 8) == "pending:" then return "busy" end
    if now ~= nil or e ~= nil then break end
  end
  self:warn("failed (" .. tostring(e or "an unexpected reply") .. ")")
  return "alone"
end

--- The event is stored here: others take it for a duplicate from now on.
function Shared:confirm(id)
  local v, e = self:command("SET", key(self, id), "stored", "PX", tostring(math.floor(self.ttl * 1000)))
  if v ~= "OK" then self:warn("failed to confirm (" .. tostring(e or "an unexpected reply") .. ")") end
end

--- Storing failed: the claim is released so that the next delivery may store it anywhere.
function Shared:release(id, token)
  local now = self:command("GET", key(self, id))
  if now == "pending:" .. token then self:command("DEL", key(self, id)) end
end

return M
