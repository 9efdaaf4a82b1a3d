--- Scenario 2's second reference for call_many (issue 26): bare_multi.lua's loop given
-- call_many's job, a list of BENCH_CALLS calls built first (as call_many.lua builds its
-- own), each reply decoded into the result slot of its call and kept to the end, as
-- call_many returns them.  A list and replies held to the end are work for Lua's
-- collector, which a loop that drops each reply never does.  Prints calls=N wall=S cpu=S
-- as call_many.lua does (bench/many/common.lua: the settings, the session, the timed run).
package.path = (os.getenv("BENCH_ROOT") or ".") .. "/bench/many/?.lua;" .. package.path
local common = require "common"
local cjson = require "cjson"
local url, auth, project = common.merge_url, common.auth, common.project
local session = common.session()

-- call_many.lua's list; each call's params also hold what the bare loop sends of its own
local function calls(count)
  local list = {}
  for i = 1, count do
    list[i] = { "contacts", "Merge", { AuthKey = auth, idProject = project,
      Records = { { ID = { key_f_EMail = "bench" .. i .. "@example.com" },
                    Data = { f_FirstName = "Bench", f_Points = i, optin_Newsletter = true } } },
      MergeOptions = { AllowInsert = true, AllowUpdate = true } } }
  end
  return list
end

local function run(list)
  local m, results = session:multi(), {}
  local count, sent, done, inflight = #list, 0, 0, 0
  while done < count do
    while inflight < 8 and sent < count do
      sent = sent + 1
      m:add(sent, url, cjson.encode(list[sent][3]), 30)
      inflight = inflight + 1
    end
    for _, r in ipairs(m:perform(1)) do
      if r.status ~= 200 then error("HTTP " .. tostring(r.status), 0) end
      local reply = cjson.decode(r.body)
      local st = reply.Records[1].Status
      if st ~= "Created" and st ~= "Updated" then error("unexpected reply", 0) end
      results[r.tag] = reply
      done, inflight = done + 1, inflight - 1
    end
  end
  m:close()
  return results
end
common.timed(run, calls)
session:close()
