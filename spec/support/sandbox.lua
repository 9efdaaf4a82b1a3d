--- Test support: the sandbox's control API, driven with the curl CLI so that
-- checks of the library never depend on the library itself.
local cjson = require "cjson"

local M = {}

--- The value of a DI_* variable written by `sandbox/ctl start`; fails loudly
-- when the specs run outside `make test` without the env file sourced.
function M.env(name)
  local v = os.getenv(name)
  if v == nil or v == "" then
    error(name .. " is not set: run `make test`, or `make sandbox-start && "
      .. ". build/sandbox/env` before busted", 2)
  end
  return v
end

local function tmpfile(content)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
  return path
end

--- Calls the control API: method, path under /_sandbox/, optional body
-- table.  Returns the decoded JSON reply.
function M.control(method, path, body)
  local url = M.env("DI_SANDBOX_URL") .. "_sandbox/" .. path
  -- (env -u: under check-asan the sanitizer runtime is preloaded for the
  -- Lua process; the curl CLI has no business with it)
  local cmd = string.format("env -u LD_PRELOAD curl -sS --fail-with-body --cacert %q -X %s", M.env("DI_CA_FILE"), method)
  local file
  if body ~= nil then
    file = tmpfile(cjson.encode(body))
    cmd = cmd .. string.format(" -H 'Content-Type: application/json' --data-binary @%q", file)
  end
  local p = assert(io.popen(cmd .. string.format(" %q 2>&1", url)))
  local out = p:read("*a")
  local ok = p:close()
  if file then os.remove(file) end
  if not ok then error("control " .. method .. " " .. path .. " failed: " .. out, 2) end
  if out == "" then return {} end
  local okj, v = pcall(cjson.decode, out)
  if not okj then error("control " .. path .. " answered non-JSON: " .. out:sub(1, 200), 2) end
  return v
end

function M.reset(body) return M.control("POST", "reset", body or {}) end
function M.faults(list) return M.control("POST", "faults", { faults = list }) end
function M.clear_faults() return M.control("DELETE", "faults") end

--- The request log entries after sequence number `since` (all when nil).
function M.log(since)
  local r = M.control("GET", "log" .. (since and ("?since=" .. since) or ""))
  return r.entries or {}
end

--- The sequence number of the latest log entry (0 when empty), to count
-- only the calls a test makes after it.
function M.mark()
  local entries = M.log()
  local last = entries[#entries]
  return last and last.seq or 0
end

--- Settings for a client of the sandbox's test account.
function M.settings(extra)
  local s = {
    base_url = M.env("DI_BASE_URL"),
    ca_file = M.env("DI_CA_FILE"),
    key_id = M.env("DI_KEY_ID"),
    key = M.env("DI_KEY"),
    project = M.env("DI_PROJECT"),
    -- the shared limiter stays on, but well above what the specs need, so
    -- that only the limiter's own specs wait on it
    rate = 1000, burst = 100,
    -- every setting is given here: a spec that leaves one out means it
    -- absent, so the DI_* environment must not fill it in
    env = false,
  }
  for k, v in pairs(extra or {}) do s[k] = v end
  return s
end

--- Runs a shell command (without the sanitizer runtime check-asan preloads)
-- and returns its output and success.
function M.sh(cmd)
  local p = assert(io.popen("unset LD_PRELOAD; " .. cmd .. " 2>&1"))
  local out = p:read("*a")
  return out, p:close()
end

return M
