--- Shared by the sequential-call contenders written in Lua (scenario 1):
-- the request every contender sends, the settings from the environment, and
-- the timed loop.  Each contender prints one line:
--   calls=N wall=SECONDS cpu=SECONDS
-- where cpu is this process's CPU time (os.clock: user + system) over the
-- timed calls only; the warm-up calls (connection, TLS handshake, first
-- allocations) are left out.
local M = {}

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then
    if default == nil then error("bench: " .. name .. " is not set", 0) end
    return default
  end
  return v
end

-- (the DI_* of build/sandbox/env when no BENCH_* is set: scripts/check-instructions runs
-- these against the sandbox without putting the key on a command line)
local function either(bench, di) return os.getenv(bench) and env(bench) or env(di) end
M.url = either("BENCH_URL", "DI_BASE_URL")   -- base URL, ends with /webservices/ofc4/
M.ca_file = either("BENCH_CA", "DI_CA_FILE")
M.key_id = tonumber(either("BENCH_KEY_ID", "DI_KEY_ID"))
M.key = either("BENCH_KEY", "DI_KEY")
M.project = tonumber(either("BENCH_PROJECT", "DI_PROJECT"))
M.secs = tonumber(env("BENCH_SECS", "1"))
M.warmup = tonumber(env("BENCH_WARMUP", "200"))
M.limiter_dir = os.getenv("BENCH_LIMITER_DIR")

--- The single-record Contacts.Merge of every contender (params only; the
-- AuthKey and idProject are added by the client, or by the peer's script).
function M.params()
  return {
    Records = { { ID = { key_f_EMail = "bench1@example.com" },
                  Data = { f_FirstName = "Bench", f_Points = 1, optin_Newsletter = true } } },
    MergeOptions = { AllowInsert = true, AllowUpdate = true },
  }
end

--- Runs call() for the warm-up, then for BENCH_SECS of wall time; `now`
-- is a wall clock in seconds.  Prints the result line.  BENCH_CALLS=N makes
-- exactly N calls after the warm-up instead (instruction counts, scenario 10).
function M.run(call, now)
  for _ = 1, M.warmup do call() end
  local exact = tonumber(os.getenv("BENCH_CALLS") or "")
  if exact then
    local t0, c0 = now(), os.clock()
    for _ = 1, exact do call() end
    io.write(string.format("calls=%d wall=%.6f cpu=%.6f\n", exact, now() - t0, os.clock() - c0))
    return
  end
  local n, t0, c0 = 0, now(), os.clock()
  local deadline = t0 + M.secs
  repeat
    for _ = 1, 16 do call() end
    n = n + 16
  until now() >= deadline
  local wall, cpu = now() - t0, os.clock() - c0
  io.write(string.format("calls=%d wall=%.6f cpu=%.6f\n", n, wall, cpu))
end

return M
