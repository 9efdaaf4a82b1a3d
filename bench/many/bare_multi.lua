--- Scenario 2's reference for call_many (issue 26): a bare Lua loop over our own C multi
-- handle (core.session:multi, libcurl) and lua-cjson, with no layer of the library above
-- them: BENCH_CALLS single-record Merges, 8 in flight, each encoded, posted, decoded and
-- its record's status checked.  Prints calls=N wall=S cpu=S as call_many.lua does, after
-- the same warm-up of 100 calls.
local core = require "dialoginsight.core"
local cjson = require "cjson"
local n = tonumber(os.getenv("BENCH_CALLS") or "20000")
local url = os.getenv("BENCH_URL") .. "contacts.ashx?method=Merge"
local session = core.session { ca_file = os.getenv("BENCH_CA"), verify = true, timeout = 30,
  connect_timeout = 10, user_agent = "dialoginsight-lua/0.1", http2 = true,
  max_reply_bytes = 64 * 1024 * 1024 }
local auth = { idKey = tonumber(os.getenv("BENCH_KEY_ID")), Key = os.getenv("BENCH_KEY") }
local project = tonumber(os.getenv("BENCH_PROJECT"))

local function run(count)
  local m = session:multi()
  local sent, done, inflight = 0, 0, 0
  while done < count do
    while inflight < 8 and sent < count do
      sent = sent + 1
      m:add(sent, url, cjson.encode {
        AuthKey = auth, idProject = project,
        Records = { { ID = { key_f_EMail = "bench" .. sent .. "@example.com" },
                      Data = { f_FirstName = "Bench", f_Points = sent, optin_Newsletter = true } } },
        MergeOptions = { AllowInsert = true, AllowUpdate = true } }, 30)
      inflight = inflight + 1
    end
    for _, r in ipairs(m:perform(1)) do
      if r.status ~= 200 then error("HTTP " .. tostring(r.status), 0) end
      local st = cjson.decode(r.body).Records[1].Status
      if st ~= "Created" and st ~= "Updated" then error("unexpected reply", 0) end
      done, inflight = done + 1, inflight - 1
    end
  end
  m:close()
end
run(100)
local t0, c0 = core.now(), os.clock()
run(n)
io.write(string.format("calls=%d wall=%.6f cpu=%.6f\n", n, core.now() - t0, os.clock() - c0))
session:close()
