--- The library's own instructions per sequential call (scripts/check-instructions,
-- make test's guard): client:call("contacts", "Merge") through a transport that answers
-- the sandbox's captured single-record reply at once, in process (docs/transport.md).
-- No network, no libcurl: what is counted is the library alone (request, limiter,
-- scheduler, reply, JSON, metrics), exact enough for a 10 % budget.  The real transport's
-- cost is bench scenario 11's.  Makes BENCH_CALLS calls after 20; prints nothing.
local di = require "dialoginsight"
local core = require "dialoginsight.core"

-- the sandbox's reply to a single-record Merge, as captured by bench/capture
local REPLY = table.concat({
  '{', '  "Success": true,', '  "ErrorCode": null,', '  "ErrorMessage": null,',
  '  "CreatedRecords": 1,', '  "UpdatedRecords": 0,', '  "Records": [', '    {',
  '      "IdRecord": 1013,', '      "Status": "Created",', '      "ValidationResult": "OK",',
  '      "Message": null,', '      "ID": {', '        "key_f_EMail": "bench1@example.com"', '      },',
  '      "Data": null,', '      "Record": null', '    }', '  ],', '  "idRequest": 100001,',
  '  "Trace": "Beginning request 100001 at 2026-12-07 14:31:14\\r\\nTargeted service: '
    .. 'Contacts.Merge\\r\\nAuthenticated key 4201\\r\\nExecuting method\\r\\nExecuting method '
    .. 'completed with success\\r\\n"', '}',
}, "\r\n")

local transport = {
  post = function() return { status = 200, body = REPLY, seconds = 0.0001, http_version = 2 } end,
  now = core.now,
  sleep = core.sleep,
}
local dir = assert(os.getenv("BENCH_LIMITER_DIR"), "BENCH_LIMITER_DIR")
local client = di.new { key_id = 4201, key = "sbx-0123456789abcdef0123456789abcdef", project = 1001,
  base_url = "https://127.0.0.1:9/webservices/ofc4/", transport = transport, env = false,
  rate = 1e6, burst = 1e6, limiter_dir = dir }
local params = {
  Records = { { ID = { key_f_EMail = "bench1@example.com" },
                Data = { f_FirstName = "Bench", f_Points = 1, optin_Newsletter = true } } },
  MergeOptions = { AllowInsert = true, AllowUpdate = true },
}
local function call()
  local r = assert(client:call("contacts", "Merge", params))
  if r.Records[1].Status ~= "Created" then error("unexpected reply", 0) end
end
for _ = 1, 20 do call() end
for _ = 1, tonumber(os.getenv("BENCH_CALLS") or "100") do call() end
