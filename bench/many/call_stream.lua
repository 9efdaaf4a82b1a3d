--- Scenario 2: BENCH_CALLS single-record Merges through client:call_stream at
-- concurrency 8: each call made when it is taken up, each result checked in done and
-- dropped, as bare_multi.lua does (call_many.lua holds the list and the results).
-- Prints calls=N wall=S cpu=S, after a warm-up of 100 calls.
local core = require "dialoginsight.core"
local di = require "dialoginsight"
local n = tonumber(os.getenv("BENCH_CALLS") or "20000")
local client = di.new {
  key_id = tonumber(os.getenv("BENCH_KEY_ID")), key = os.getenv("BENCH_KEY"),
  project = tonumber(os.getenv("BENCH_PROJECT")), base_url = os.getenv("BENCH_URL"),
  ca_file = os.getenv("BENCH_CA"), allow_http = true, rate = 1e6, burst = 1e6,
  limiter_dir = os.getenv("BENCH_LIMITER_DIR"),
}
local function run(count)
  local i = 0
  client:call_stream(function()
    if i == count then return nil end
    i = i + 1
    return { "contacts", "Merge", {
      Records = { { ID = { key_f_EMail = "bench" .. i .. "@example.com" },
                    Data = { f_FirstName = "Bench", f_Points = i, optin_Newsletter = true } } },
      MergeOptions = { AllowInsert = true, AllowUpdate = true } } }
  end, function(_, r, failed)
    if failed then error(tostring(r), 0) end
    local st = r.Records[1].Status
    if st ~= "Created" and st ~= "Updated" then error("unexpected reply", 0) end
  end, { concurrency = 8 })
end
run(100)
local t0, c0 = core.now(), os.clock()
run(n)
io.write(string.format("calls=%d wall=%.6f cpu=%.6f\n", n, core.now() - t0, os.clock() - c0))
client:close()
