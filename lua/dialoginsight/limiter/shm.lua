--- The limiter backend of one host: a GCRA state per (API host, key id) in a file under
-- limiter_dir that every process maps (src/di_limiter.c, src/di_limiter_file.c).
local core = require "dialoginsight.core"
local log = require "dialoginsight.log"
local host_of = require("dialoginsight.limiter.host").of

local M = {}

--- The file that holds the limit of key_id on the host of base_url (limiter/host.lua).
function M.path(dir, base_url, key_id)
  return string.format("%s/dialoginsight-%s-%s.gcra", dir,
    (host_of(base_url):gsub("[^%w%.%-]", "_")), tostring(key_id))
end

-- What the core reports when an access repaired the shared file
-- (src/di_limiter.c: limiter_acquire), as the warning a user reads.
local EVENTS = {
  reset = "held an arrival time further ahead than any client could have set "
    .. "(a file from before a reboot, or written by something else): reset, "
    .. "calls go on at the configured rate",
  regrown = "had shrunk while in use (truncated?): extended again, "
    .. "the limit starts afresh",
  unusable = "cannot be used (%s): calls go on without the shared limit",
}

-- Once per process and kind: a damaged file is one event, however many calls see it.
local warned = {}

local function report(path, event)
  if event == nil then return end
  local kind, detail = event:match("^(%a+):? ?(.*)$")
  if warned[kind] then return end
  warned[kind] = true
  log.warn(string.format("dialoginsight: WARNING: the shared limiter file %s %s",
    path, EVENTS[kind]:format(detail)))
end

local Shm = {}
Shm.__index = Shm

--- 0 (slot taken) or seconds to wait; priority: "interactive" (nil) or "batch".
function Shm:acquire(_, priority)
  local wait, event = self.core:acquire(priority)
  if event then report(self.path, event) end -- (a repair: rare, and reported once)
  return wait
end

--- The state as it stands, read without a change: the core's figures and
-- how far ahead the state is (seconds), backend "local", path; nil, why
-- when the file cannot be read.
function Shm:status()
  local st, event = self.core:status()
  report(self.path, event)
  if not st then return nil, "the shared limiter file " .. self.path .. " cannot be read" end
  st.backend, st.path = "local", self.path
  return st
end

function Shm:penalize(seconds)
  report(self.path, self.core:penalize(seconds))
end

function Shm:configure(rate, burst, share) return self.core:configure(rate, burst, share) end

function Shm:close() return self.core:close() end

--- The limiter of a client's settings, or nil, message.  A pause never exceeds
-- max_retry_after: one huge Retry-After must not hold every sharer longer than it would wait.
function M.open(settings)
  local dir = settings.limiter_dir
  if dir == nil then
    local err
    dir, err = core.runtime_dir()
    if not dir then return nil, err end
  end
  -- the policy config.resolve made (call/retry.lua); the core's default (30 s) is its own
  local policy = type(settings.retries) == "table" and settings.retries or {}
  local path = M.path(dir, settings.base_url, settings.key_id)
  local lim, err = core.limiter {
    path = path, rate = settings.rate, burst = settings.burst,
    max_penalty = policy.max_retry_after, batch_share = settings.batch_share,
  }
  if not lim then return nil, err end
  return setmetatable({ core = lim, path = path }, Shm)
end

return M
