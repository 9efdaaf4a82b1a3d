--- Option tables: the one check of names and values, for settings, call and resource options.
-- A method declares its options once, beside its code, as a set (M.set); an unknown
-- name is refused with the closest known one, so that a misspelling never passes.
-- @module dialoginsight.options
local errors = require "dialoginsight.errors"
local log = require "dialoginsight.log"

local M = {}

-- Value checks: nil when v is fine, else what it must be.  `true` in a set
-- takes any value: the code that uses it checks it (retries: call/retry.lua).

--- true or false, nothing that merely reads as one ("false" and 0 are truthy).
function M.boolean(v)
  if type(v) ~= "boolean" then return "must be true or false" end
end

--- A whole number >= 1 (NaN and inf refused).
function M.count(v)
  if type(v) ~= "number" or not (v >= 1) or v ~= math.floor(v) or v == math.huge then
    return "must be a positive integer"
  end
end

--- The shortest duration taken, in seconds: libcurl and cosockets count
-- whole milliseconds, and libcurl reads a timeout of 0 ms as none at all.
M.MIN_SECONDS = 0.001

--- What a duration must be, for messages.
M.SECONDS = "must be a number of seconds from 0.001 (1 ms) to 86400"

--- True when v is a number of seconds from MIN_SECONDS to a day (NaN and inf fail).
function M.is_seconds(v)
  return type(v) == "number" and v >= M.MIN_SECONDS and v <= 86400
end

--- A duration in seconds.
function M.seconds(v)
  if not M.is_seconds(v) then return M.SECONDS end
end

--- A duration in seconds, or false for none.
function M.seconds_or_false(v)
  if v ~= false and not M.is_seconds(v) then return M.SECONDS .. ", or false for none" end
end

--- Seconds above which a duration is taken for milliseconds passed by
-- mistake (resty libraries and cosockets' settimeout take milliseconds).
M.LONG_SECONDS = 600

-- Once per process: a job that builds a client per batch must not bury its output.
local warned_long = false

--- Warns once when v (seconds) is over LONG_SECONDS; the value is kept (a long batch call may mean it).
-- @tparam string what "setting 'timeout'", "option 'deadline'"
-- @param v the value
function M.warn_long(what, v)
  if warned_long or type(v) ~= "number" or not (v > M.LONG_SECONDS) then return end
  warned_long = true
  log.warn(string.format("dialoginsight: WARNING: %s is %g seconds (over %d): timeouts "
    .. "here are in seconds, not milliseconds as in resty libraries; if you meant %g ms, "
    .. "give %g", what, v, M.LONG_SECONDS, v, v / 1000))
end

--- A call's priority for the rate limit: "interactive" or "batch" (docs/limiter.md,
-- "A reserve for interactive calls").
function M.priority(v)
  if v ~= "interactive" and v ~= "batch" then return "must be \"interactive\" or \"batch\"" end
end

--- The options every call takes (client:call and each resource method).
M.CALL = { timeout = M.seconds, deadline = M.seconds_or_false, retries = true,
           priority = M.priority }
--- The options of calls run concurrently (call_many, call_stream, merge_many).
M.MANY = {
  concurrency = function(v)
    if M.count(v) or v > 2^31 then return "must be a whole number of calls from 1 to 2^31" end
  end,
}

--- A set of options: the union of the maps given (name -> check, or true).
-- noun: what a name is in messages ("option", the default; "setting", "member").
-- @usage local MERGE = options.set({ key = true, insert = options.boolean }, options.CALL)
function M.set(...)
  local s = { checks = {}, names = {}, noun = "option" }
  for i = 1, select("#", ...) do
    local m = select(i, ...)
    for k, check in pairs(m.checks or m) do s.checks[k] = check end
  end
  for k in pairs(s.checks) do s.names[#s.names + 1] = k end
  table.sort(s.names)
  return s
end

--- True when s may be an API key, and so is never shown: it holds a live client's key
-- (or 16 bytes of it), or a run of 16 hex digits or more with letters and digits both (a
-- key's body, with or without a prefix; a 16-digit number alone is no key).
function M.secret_like(s)
  if type(s) ~= "string" then return false end
  for run in s:gmatch("%x+") do
    if #run >= 16 and run:find("%a") and run:find("%d") then return true end
  end
  return errors.holds_secret(s)
end

-- name quoted when it is a string of at most max bytes matching pattern and no
-- secret_like, else described by type and length (a value given as a name: the key?)
local function quoted(name, max, pattern)
  if type(name) == "string" and #name <= max and name:match(pattern) and not M.secret_like(name) then
    return "'" .. name .. "'"
  end
  return "(" .. errors.describe(name) .. ")"
end

--- An option or setting name as a message may show it: an identifier of up to 20 bytes.
-- @param k the name
-- @treturn string
function M.shown(k) return quoted(k, 20, "^[%a_][%w_]*$") end

--- A field or column name as a message may show it: letters, digits, `_ . -` and
-- spaces, at most 64 bytes.
-- @param name the name
-- @treturn string
function M.field(name) return quoted(name, 64, "^[%w_][%w_%.%- ]*$") end

--- Names whose values are secrets: a refusal names their type alone (a numeric secret
-- would otherwise be quoted).
M.SECRETS = { key = true, secret = true, webhook_secret = true, password = true }

--- What is wrong with opts, or nil: not a table, an unknown name, a bad value (never shown).
-- @param opts the table given (nil: none)
-- @tparam table allowed a set (M.set)
-- @tparam string where the method ("contacts:merge") or "di.new"
-- @treturn ?string the message
function M.problem(opts, allowed, where)
  if opts == nil then return nil end
  local noun = allowed.noun
  if type(opts) ~= "table" then
    return "dialoginsight: " .. where .. ": " .. noun .. "s must be a table (got " .. errors.describe(opts) .. ")"
  end
  -- members behind __index or __pairs would be read unchecked: a guard (insert =
  -- "false") could pass
  if getmetatable(opts) ~= nil then
    return "dialoginsight: " .. where .. ": " .. noun .. "s must be a plain table (this one has a metatable)"
  end
  for k, v in pairs(opts) do
    local check = allowed.checks[k]
    if not check then
      local name = M.shown(k)
      local guess = name:sub(1, 1) == "'" and errors.closest(k, allowed.names)
      local hint = guess and (" (did you mean '" .. guess .. "'?)") or ""
      if noun == "setting" then
        return "dialoginsight: setting " .. name .. " is not a known setting" .. hint
      end
      return "dialoginsight: " .. where .. " has no " .. noun .. " " .. name .. hint
        .. "; its " .. noun .. "s: " .. table.concat(allowed.names, ", ")
    end
    local why = check ~= true and check(v)
    if why then
      local got = M.SECRETS[k] and ("a " .. type(v)) or errors.describe(v)
      return "dialoginsight: " .. noun .. " '" .. k .. "' " .. why .. " (got " .. got .. ")"
    end
  end
  return nil
end

--- Raises M.problem's answer at the user's call of the public method that called check.
function M.check(opts, allowed, where)
  local why = M.problem(opts, allowed, where)
  if why then error(why, 3) end
end

--- The members of opts that allowed names, or nil when none: a resource's
-- options hold the call's among their own.
function M.pick(opts, allowed)
  if opts == nil then return nil end
  local o
  for _, k in ipairs(allowed.names) do
    if opts[k] ~= nil then
      o = o or {}
      o[k] = opts[k]
    end
  end
  return o
end

local OF_CALL = M.set(M.CALL, M.MANY)

--- The call options among a resource method's options, for client:call.
function M.of_call(opts) return M.pick(opts, OF_CALL) end

return M
