--- Scenario 2: BENCH_CALLS single-record Merges through client:call_many
-- at concurrency 8, one multi on one thread (bench/many/common.lua: the settings, the
-- timed run).  Timed over the whole call_many (preparing, encoding, sending, decoding).
package.path = (os.getenv("BENCH_ROOT") or ".") .. "/bench/many/?.lua;" .. package.path
local common = require "common"
local di = require "dialoginsight"
local client = common.client(di)
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
common.timed(function(list)
  local results, failures = client:call_many(list, { concurrency = 8 })
  if failures > 0 then
    for _, r in ipairs(results) do
      if di.is_error(r) then error(tostring(r), 0) end
    end
  end
end, calls)
client:close()
