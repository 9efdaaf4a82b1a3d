-- The transport contract (docs/transport.md) on the curl transport, case by
-- case from spec/support/transport_cases.lua; spec/nginx/transport_spec.lua
-- runs the same cases on the ngx transport inside nginx.
local core = require "dialoginsight.core"
local config = require "dialoginsight.config"
local curl = require "dialoginsight.transport.curl"
local cases = require "support.transport_cases"
local sbx = require "support.sandbox"

describe("transport contract (curl)", function()
  local t, env
  setup(function()
    local s = config.resolve(sbx.settings())
    t = curl.new(s)
    local port = sbx.sh("scripts/free-port"):match("%d+")
    env = {
      base = s.base_url,
      body = core.encode { AuthKey = { idKey = s.key_id, Key = sbx.env("DI_KEY") } },
      closed = "https://127.0.0.1:" .. port .. "/x.ashx?method=List",
    }
  end)
  teardown(function() if t then t:close() end; sbx.clear_faults() end)
  before_each(function() sbx.clear_faults() end)

  for i, c in ipairs(cases.cases) do
    it(c.name, function()
      if c.faults then sbx.faults(c.faults) end
      local why = cases.run(i, t, env)
      assert.is_nil(why, why)
    end)
  end
end)
