--- Scenario 2: BENCH_CALLS single-record Merges through client:call_many
-- at concurrency 8, one multi on one thread.  Prints
--   calls=N wall=S cpu=S
-- over the whole call_many (preparing, encoding, sending, decoding), after a
-- warm-up call_many of 100 that opens the connections.
local core = require "dialoginsight.core"
local di = require "dialoginsight"
local n = tonumber(os.getenv("BENCH_CALLS") or "20000")
local client = di.new {
  key_id = tonumber(os.getenv("BENCH_KEY_ID")), key = os.getenv("BENCH_KEY"),
  project = tonumber(os.getenv("BENCH_PROJECT")), base_url = os.getenv("BENCH_URL"),
  ca_file = os.getenv("BENCH_CA"), allow_http = true, rate = 1e6, burst = 1e6,
  limiter_dir = os.getenv("BENCH_LIMITER_DIR"),
}
local function calls(count)
  local list = {}
  for i = 1, count do
    list[i] = { "contacts", "Merge", {
      Records = { { ID = { key_f_EMail = "bench" .. i .. "@example.com" },
                    Data = { f_FirstName = "Bench", f_Points = i, optin_Newsletter = true } } },
      MergeOptions = { AllowInsert = true, AllowUpdate = true } } }
  end
  return list
end
local function run(list)
  local results, failures = client:call_many(list, { concurrency = 8 })
  if failures > 0 then
    for _, r in ipairs(results) do
      if di.is_error(r) then error(tostring(r), 0) end
    end
  end
end
run(calls(100))
local list = calls(n)
local t0, c0 = core.now(), os.clock()
run(list)
io.write(string.format("calls=%d wall=%.6f cpu=%.6f\n", n, core.now() - t0, os.clock() - c0))
client:close()
