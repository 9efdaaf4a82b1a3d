--- Scenario 1's reference for the call path (issue 26): a bare Lua loop over our own C
-- HTTP handle (core.session:post, libcurl) and lua-cjson, with no layer of the library
-- above them: encode the request, post it, decode the reply, check the record's status.
-- Debian's lua-curl is not Lua-cURLv3 for Lua 5.4, so the handle is ours.
package.path = (os.getenv("BENCH_ROOT") or ".") .. "/bench/seq/?.lua;" .. package.path
local common = require "common"
local core = require "dialoginsight.core"
local cjson = require "cjson"

local session = core.session { ca_file = common.ca_file, verify = true, timeout = 30,
  connect_timeout = 10, user_agent = "dialoginsight-lua/0.1", http2 = true,
  max_reply_bytes = 64 * 1024 * 1024 }
local url = common.url .. "contacts.ashx?method=Merge"
local params = common.params()
params.AuthKey = { idKey = common.key_id, Key = common.key }
params.idProject = common.project
common.run(function()
  local r = session:post(url, cjson.encode(params), 30)
  if r.status ~= 200 then error("HTTP " .. tostring(r.status), 0) end
  local t = cjson.decode(r.body)
  local st = t.Records[1].Status -- (the static server: Created; the sandbox, after the first: Updated)
  if st ~= "Created" and st ~= "Updated" then error("unexpected reply", 0) end
end, core.now)
session:close()
