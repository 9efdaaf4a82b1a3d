-- Shared by the resource specs: clients of the sandbox, and reading what the
-- sandbox holds and logged (through its control API, not through the library).
local di = require "dialoginsight"
local sbx = require "support.sandbox"
local cjson = require "cjson"
local assert = require "luassert"

local M = {}

function M.client(extra) return di.new(sbx.settings(extra)) end

--- A client whose key may use no project and no table.
function M.noperm(extra)
  local s = { key_id = sbx.env("DI_NOPERM_KEY_ID"), key = sbx.env("DI_NOPERM_KEY") }
  for k, v in pairs(extra or {}) do s[k] = v end
  return di.new(sbx.settings(s))
end

--- Log entries after `since` of one "service.method" (lower case).
function M.calls(since, name)
  local list = {}
  for _, e in ipairs(sbx.log(since)) do
    if e.service .. "." .. e.method == name then list[#list + 1] = e end
  end
  return list
end

--- The stored contacts of the test project, by e-mail, in wire form.
function M.stored()
  local all = sbx.control("GET", "state?contacts=1").contacts
  for _, c in pairs(all) do
    for k, v in pairs(c) do if v == cjson.null then c[k] = nil end end
  end
  return all
end

--- Asserts err is a validation error naming each of fields (and returns
-- its problems by field).
function M.invalid(err, fields)
  assert.is_true(di.is_error(err), "expected an error object, got " .. tostring(err))
  assert.equal("validation", err.kind)
  local by = {}
  for _, p in ipairs(err.problems or {}) do by[p.field] = p end
  for _, f in ipairs(fields or {}) do
    assert.is_table(by[f], "no problem named field " .. f .. " in: " .. tostring(err))
  end
  return by
end

return M
