--- Scenario 2: BENCH_CALLS single-record Merges through client:call_stream at
-- concurrency 8: each call made when it is taken up, each result checked in done and
-- dropped, as bare_multi.lua does (call_many.lua holds the list and the results).
-- bench/many/common.lua: the settings, the timed run.
package.path = (os.getenv("BENCH_ROOT") or ".") .. "/bench/many/?.lua;" .. package.path
local common = require "common"
local di = require "dialoginsight"
local client = common.client(di)
common.timed(function(count)
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
end, function(n) return n end)
client:close()
