--- Scenario 2's reference for call_many (issue 26): a bare Lua loop over our own C multi
-- handle (core.session:multi, libcurl) and lua-cjson, with no layer of the library above
-- them: BENCH_CALLS single-record Merges, 8 in flight, each encoded, posted, decoded and
-- its record's status checked, the reply then dropped.  bench/many/common.lua: the
-- settings, the session, the timed run.
package.path = (os.getenv("BENCH_ROOT") or ".") .. "/bench/many/?.lua;" .. package.path
local common = require "common"
local cjson = require "cjson"
local url, auth, project = common.merge_url, common.auth, common.project
local session = common.session()

common.timed(function(count)
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
end, function(n) return n end)
session:close()
