--- Scenario 3: JSON in process.  Encodes a 100-record Merge request and
-- decodes a 1,000-record Contacts.Get reply (the sandbox's bytes: indented,
-- CRLF), through our core (core.encode / core.decode) and through raw
-- lua-cjson on the same data, alternating A B per round.  Prints one line
-- per round and operation:
--   round=R op=encode|decode impl=core|cjson us=MICROSECONDS_PER_OP
-- Usage: json.lua GET_REPLY_FILE [ROUNDS [SCALE]]
--        json.lua GET_REPLY_FILE count encode|decode|merge core|cjson N
local core = require "dialoginsight.core"
local cjson = require("cjson").new()
local file = assert(arg[1], "usage: json.lua GET_REPLY_FILE [ROUNDS [SCALE]]")
local rounds = tonumber(arg[2]) or 5
local scale = tonumber(arg[3]) or 1
local f = assert(io.open(file, "rb"))
local get_reply = f:read("*a")
f:close()

-- The request of one sync batch: 100 wire records, as fields.lua builds them.
local CITIES = { "Montréal", "Québec", "Paris", "Lyon", "Toronto" }
local records = {}
for i = 1, 100 do
  records[i] = {
    ID = { key_f_EMail = string.format("user%07d@example.com", i) },
    Data = { f_FirstName = "Ann", f_LastName = "Doe-" .. i, f_City = CITIES[i % 5 + 1],
             f_BirthDate = string.format("%04d.%02d.%02d", 1950 + i % 50, i % 12 + 1, i % 28 + 1),
             f_Points = i % 1000, optin_Newsletter = i % 3 ~= 0 },
  }
end
local request = {
  AuthKey = { idKey = 4201, Key = "sbx-0123456789abcdef0123456789abcdef" }, idProject = 1001,
  Records = records,
  MergeOptions = { AllowInsert = true, AllowUpdate = true, SkipDuplicateRecords = false,
                   SkipUnmatchedRecords = false, ReturnRecordsOnSuccess = false,
                   ReturnRecordsOnError = false },
}
assert(#core.decode(get_reply).Records == 1000)

local ops = {
  encode = { n = math.max(1, math.floor(2000 * scale)),
             core = function() return core.encode(request) end,
             cjson = function() return cjson.encode(request) end },
  decode = { n = math.max(1, math.floor(120 * scale)),
             core = function() return core.decode(get_reply) end,
             cjson = function() return cjson.decode(get_reply) end },
}
-- `json.lua FILE count OP IMPL N`: OP by IMPL N times, nothing printed (instruction
-- counts, scenario 11); OP merge: decode the single-record Merge reply (FILE's sibling
-- merge_reply.json)
if arg[2] == "count" then
  local op, impl, n = arg[3], arg[4], tonumber(arg[5])
  if op == "merge" then
    local m = assert(io.open((file:gsub("[^/]*$", "merge_reply.json")), "rb"))
    local reply = m:read("*a")
    m:close()
    local dec = impl == "core" and core.decode or cjson.decode
    for _ = 1, n do dec(reply) end
  else
    local fn = ops[op][impl]
    for _ = 1, n do fn() end
  end
  return
end

local function time(fn, n)
  fn() -- warm
  collectgarbage()
  local c0 = os.clock()
  for _ = 1, n do fn() end
  return (os.clock() - c0) / n * 1e6
end
for r = 1, rounds do
  for _, op in ipairs { "encode", "decode" } do
    local o = ops[op]
    for _, impl in ipairs { "core", "cjson" } do
      io.write(string.format("round=%d op=%s impl=%s us=%.3f\n", r, op, impl, time(o[impl], o.n)))
    end
  end
end
