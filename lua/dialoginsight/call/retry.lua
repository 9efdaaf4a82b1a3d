--- The retry policy: when to try a call again, and how long to wait first.
-- A non-idempotent method is retried only when the request provably never
-- reached the server (no connection, or a 429); otherwise its error says
-- outcome = "unknown": the server may have acted, and the caller decides.
local errors = require "dialoginsight.errors"
local options = require "dialoginsight.options"

local M = {}

M.DEFAULTS = {
  retries = 2,          -- attempts = retries + 1
  base = 0.5,           -- first back-off, seconds
  cap = 8,              -- longest back-off, seconds
  max_retry_after = 30, -- longest Retry-After honoured, seconds
}

-- The first back-off after a call limit without Retry-After, in seconds:
-- the limit is counted per key, so a quick retry would only be refused too.
M.LIMIT_BASE = 1

local RETRY_STATUS = { [429] = true, [500] = true, [502] = true, [503] = true, [504] = true }

M.MAX_RETRIES = 100   -- more is a loop, not a retry policy
M.MAX_SECONDS = 86400 -- the longest back-off or Retry-After honoured

-- The members of a retries table (their values are checked below).
local MEMBERS = { random = true }
for k in pairs(M.DEFAULTS) do MEMBERS[k] = true end
MEMBERS = options.set(MEMBERS)
MEMBERS.noun = "member"

--- A policy from nil (defaults), a number (retries) or a table, or nil, why.
-- noun ("setting" or "option") names it in the message.
function M.policy(opt, noun)
  noun = noun or "setting"
  local function bad(name, why, v)
    return nil, "dialoginsight: " .. noun .. " '" .. name .. "' " .. why
      .. " (got " .. errors.describe(v) .. ")"
  end
  local p = {}
  for k, v in pairs(M.DEFAULTS) do p[k] = v end
  if type(opt) == "number" then
    p.retries = opt
  elseif type(opt) == "table" then
    local why = options.problem(opt, MEMBERS, noun .. " 'retries'")
    if why then return nil, why end
    for k, v in pairs(opt) do p[k] = v end
  elseif opt ~= nil then
    return bad("retries", "must be a number or a table", opt)
  end
  local n = p.retries
  if type(n) ~= "number" or n ~= math.floor(n) or n < 0 or n > M.MAX_RETRIES then
    return bad("retries", "must be a whole number from 0 to " .. M.MAX_RETRIES, n)
  end
  for _, k in ipairs { "base", "cap", "max_retry_after" } do
    local v = p[k]
    -- NaN fails v >= 0; inf fails the bound (it would be a sleep forever)
    if type(v) ~= "number" or not (v >= 0 and v <= M.MAX_SECONDS) then
      return bad("retries." .. k, "must be a number of seconds from 0 to " .. M.MAX_SECONDS, v)
    end
  end
  if p.random ~= nil and type(p.random) ~= "function" then
    return bad("retries.random", "must be a function", p.random)
  end
  p.random = p.random or math.random
  return p
end

--- Whether err, from a call of the registry entry, may be retried (sets err.retryable and err.outcome).
function M.classify(entry, err)
  local retryable, maybe_done = false, false
  if err.kind == "rate_limited" then
    -- the call limit (a 429, or call/reply.lua's auth-style error): refused before processing
    retryable = true
  elseif err.kind == "decode" then
    retryable, maybe_done = entry.idempotent, true -- a reply came, garbled
  elseif err.kind == "too_large" then
    -- would come as large again; the kind stays, to tell it from an HTTP error
    if not entry.idempotent then err.outcome = "unknown" end
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

--- Seconds every sharer of the key pauses after a limit reply, at most
-- max_retry_after: a Retry-After of a day must not freeze them all for a day.
function M.penalty(p, err)
  return math.min(err.retry_after or 1, p.max_retry_after)
end

--- Seconds to wait before attempt `attempt` + 1: Retry-After up to max_retry_after;
-- else exponential back-off, capped, with jitter (from LIMIT_BASE after a call limit).
function M.delay(p, attempt, err)
  if err and err.retry_after then
    return math.min(err.retry_after, p.max_retry_after)
  end
  if err and err.kind == "rate_limited" then
    -- never less than the doubling from 1 s: jitter only adds
    local d = math.max(p.base, M.LIMIT_BASE) * 2 ^ (attempt - 1)
    return math.min(p.cap, d * (1 + p.random() / 2))
  end
  local d = math.min(p.cap, p.base * 2 ^ (attempt - 1))
  return d / 2 + p.random() * d / 2
end

return M
