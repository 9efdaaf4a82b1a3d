--- The retry policy: when to try a call again, and how long to wait first.
-- Policy only: call/scheduler.lua runs the attempts and asks here.
--
-- Idempotent methods (per the registry) are retried after any transient
-- failure.  A non-idempotent one (a send, a trigger, a create) is retried
-- only when the request provably never reached the server: the connection
-- was never made, or a 429 refused it before processing.  After a timeout,
-- a dropped connection or a 5xx, its error says outcome = "unknown", since
-- the server may have acted, and the caller must decide.
local M = {}

M.DEFAULTS = {
  retries = 2,          -- attempts = retries + 1
  base = 0.5,           -- first back-off, seconds
  cap = 8,              -- longest back-off, seconds
  max_retry_after = 30, -- longest Retry-After honoured, seconds
}

local RETRY_STATUS = { [429] = true, [500] = true, [502] = true, [503] = true, [504] = true }

--- Builds a policy from nil (defaults), a number (retries) or a table.
function M.policy(opt)
  local p = {}
  for k, v in pairs(M.DEFAULTS) do p[k] = v end
  if type(opt) == "number" then
    p.retries = opt
  elseif type(opt) == "table" then
    for k, v in pairs(opt) do
      if M.DEFAULTS[k] == nil and k ~= "random" then
        error("dialoginsight: unknown retry setting '" .. tostring(k) .. "'", 0)
      end
      p[k] = v
    end
  elseif opt ~= nil then
    error("dialoginsight: setting 'retries' must be a number or a table", 0)
  end
  for k in pairs(M.DEFAULTS) do
    if type(p[k]) ~= "number" or p[k] < 0 or p[k] ~= p[k] then
      error("dialoginsight: retry setting '" .. k .. "' must be a number >= 0", 0)
    end
  end
  if p.retries ~= math.floor(p.retries) then
    error("dialoginsight: setting 'retries' must be a whole number", 0)
  end
  p.random = p.random or math.random
  return p
end

--- Decides whether err, from a call of the registry entry, may be retried.
-- Sets err.retryable, and err.outcome = "unknown" where the server may have
-- acted on a non-idempotent call.
function M.classify(entry, err)
  local retryable, maybe_done = false, false
  if err.kind == "decode" then
    retryable, maybe_done = entry.idempotent, true -- a reply came, garbled
  elseif err.status then
    if err.status == 429 then
      retryable = true -- refused before processing: safe for any method
    elseif RETRY_STATUS[err.status] then
      retryable, maybe_done = entry.idempotent, true
    end
  elseif err.kind == "network" or err.kind == "timeout" then
    if err.sent == false then
      retryable = true -- never left this host
    else
      retryable, maybe_done = entry.idempotent, true
    end
  end
  if maybe_done and not entry.idempotent then
    err.outcome = "unknown"
    if err.kind ~= "timeout" and err.kind ~= "network" then err.kind = "http" end
  end
  err.retryable = retryable
  return retryable
end

--- Seconds every sharer of the key pauses after err, a 429: its Retry-After
-- (1 s when absent), at most max_retry_after.  A server's (or a proxy's)
-- Retry-After of a day must not freeze every process on the key for a day.
function M.penalty(p, err)
  return math.min(err.retry_after or 1, p.max_retry_after)
end

--- Seconds to wait before attempt number `attempt` + 1.  Honours the
-- server's Retry-After up to the cap; otherwise exponential back-off from
-- `base`, doubling, capped, with "equal jitter": between half and all of it.
function M.delay(p, attempt, err)
  if err and err.retry_after then
    return math.min(err.retry_after, p.max_retry_after)
  end
  local d = math.min(p.cap, p.base * 2 ^ (attempt - 1))
  return d / 2 + p.random() * d / 2
end

return M
