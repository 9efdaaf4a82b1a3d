-- wrk script: single-record Contacts.Merge calls over keep-alive.
--   . build/sandbox/env
--   wrk -t1 -c32 -d10s -s sandbox/bench/merge.lua "${DI_SANDBOX_HTTP_URL}contacts.ashx?method=Merge"
-- Cycles through 10,000 e-mails, so the run mixes inserts and updates; with
-- BENCH_CONTACTS=1 (sandbox/bench/run --hot) every call updates the same
-- contact, the hot-contact case.
local key_id = os.getenv("DI_KEY_ID") or "4201"
local key = os.getenv("DI_KEY") or error("source build/sandbox/env first")
local project = os.getenv("DI_PROJECT") or "1001"

local bodies, n, i = {}, tonumber(os.getenv("BENCH_CONTACTS") or "") or 10000, 0
for k = 1, n do
  bodies[k] = string.format(
    '{"AuthKey":{"idKey":%s,"Key":"%s"},"idProject":%s,"Records":[{"ID":{"key_f_EMail":"bench%d@example.com"},' ..
    '"Data":{"f_FirstName":"Bench","f_Points":%d,"optin_Newsletter":true}}],' ..
    '"MergeOptions":{"AllowInsert":true,"AllowUpdate":true}}', key_id, key, project, k, k)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  i = i % n + 1
  return wrk.format(nil, nil, nil, bodies[i])
end

function done(summary, latency, requests)
  io.write(string.format("non-200 responses: %d\n", summary.errors.status))
end
