-- fuzz_fields driver: a byte-built value (fuzz_value.lua) through
-- records.record's contact builder (against a fixed project schema, and without one),
-- the contact where-clause path (resources.base.clause: where.compile with the
-- field resolver), where.compile with the bare resolver, and core.encode.
--
-- Every outcome must be a value or a clear error: a result, a list of
-- problems, nil + an error object, or nil + a message from the encoder.
-- A raised error is accepted only for the documented programming errors,
-- whose messages start with "dialoginsight" (bad key field, malformed
-- where-clause); anything else raised is a finding.
local core = require "dialoginsight.core"
local errors = require "dialoginsight.errors"
local fields = require "dialoginsight.records.fields"
local where = require "dialoginsight.records.where"
local record = require "dialoginsight.records.record"
local base = require "dialoginsight.resources.base"
local builder = require "fuzz_value"

local function fail(fmt, ...)
  error("fuzz_fields: " .. string.format(fmt, ...), 0)
end

-- The shape projects:fields() returns, built the way it builds it: from a
-- Projects.Get ProjectInfo.
local SCHEMA = fields.schema {
  ProjectFields = {
    { Code = "EMail", DataType = "Text", isKey = true, isRequired = true,
      Labels = { { Lang = "en", Value = "E-mail" } } },
    { Code = "FirstName", DataType = "Text" },
    { Code = "LastName", DataType = "Text", isRequired = true },
    { Code = "Points", DataType = "Integer" },
    { Code = "Score", DataType = "Decimal" },
    { Code = "Birthday", DataType = "Date" },
    { Code = "LastVisit", DataType = "DateTime" },
    { Code = "Active", DataType = "Boolean" },
    { Code = "City", DataType = "Text" },
    { Code = "Custom", DataType = "SomethingNew" },
  },
  OptinFields = { { Code = "Newsletter" }, { Code = "Promos" } },
}
local IDX = fields.index(SCHEMA)

-- What base.clause needs of a client: its settings and projects:fields().
local CLIENT = { settings = { strict = true },
                 projects = { fields = function() return SCHEMA end } }

local function documented(msg)
  if type(msg) ~= "string" then return false end
  msg = msg:gsub("^[^\n]-:%d+: ", "")
  return msg:match("^dialoginsight[%w%.]*: ") ~= nil
end

local function call(what, f, ...)
  local res = table.pack(pcall(f, ...))
  if not res[1] then
    if documented(res[2]) then return nil end
    fail("%s raised: %s", what, tostring(res[2]))
  end
  return table.unpack(res, 2, res.n)
end

-- core.encode never raises; what it returns is JSON cjson can read, and
-- what cjson read back encodes again.
local function check_encode(what, v)
  local ok, json, why = pcall(core.encode, v)
  if not ok then fail("core.encode(%s) raised: %s", what, tostring(json)) end
  if json == nil then
    if type(why) ~= "string" or why == "" then fail("core.encode(%s): nil without a reason", what) end
    return
  end
  if type(json) ~= "string" then fail("core.encode(%s) returned a %s", what, type(json)) end
  local back, derr = core.decode(json)
  if back == nil and json ~= "null" then
    fail("core.encode(%s) made JSON cjson refuses (%s): %q", what, tostring(derr), json:sub(1, 200))
  end
  local again, aerr = core.encode(back)
  if again == nil then fail("decoded JSON of %s does not encode again: %s", what, tostring(aerr)) end
end

local function check_problems(what, problems)
  if type(problems) ~= "table" then fail("%s: problems is a %s", what, type(problems)) end
  for i, p in ipairs(problems) do
    if type(p.field) ~= "string" or type(p.message) ~= "string" then
      fail("%s: problem %d has field %s, message %s", what, i, type(p.field), type(p.message))
    end
  end
end

local function check_record(what, contact, idx, key)
  local rec, problems = call(what, function() return record.contacts(idx, key):map(contact) end)
  if rec == nil then return end
  problems = problems or {}
  if type(rec) ~= "table" or type(rec.ID) ~= "table" or type(rec.Data) ~= "table" then
    fail("%s: no { ID, Data } record", what)
  end
  check_problems(what, problems)
  if #problems > 0 then
    local err = fields.invalid(problems, "contacts", "Merge")
    if not errors.is_error(err) or err.kind ~= "validation" then fail("%s: invalid() gave no validation error", what) end
    if type(tostring(err)) ~= "string" then fail("%s: tostring(err)", what) end
  end
  check_encode(what, rec)
end

local function check_where(what, f, ...)
  local clause, problems = call(what, f, ...)
  if clause == nil and problems == nil then return end
  if what == "contacts.clause" then
    if clause == nil then
      if not errors.is_error(problems) or problems.kind ~= "validation" then
        fail("contacts.clause: nil without a validation error")
      end
      if type(tostring(problems)) ~= "string" then fail("contacts.clause: tostring(err)") end
      return
    end
  else
    check_problems(what, problems)
  end
  if type(clause) ~= "table" then fail("%s returned a %s clause", what, type(clause)) end
  check_encode(what, clause)
end

return function(bytes)
  local sel = bytes:byte(1) or 0
  local v, r = builder.build(bytes:sub(2))
  local contact = type(v) == "table" and v or { EMail = v }
  local key = (sel & 1) ~= 0 and r:name() or nil
  check_record("contact_record(strict)", contact, IDX, key)
  check_record("contact_record", contact, nil, key)
  check_where("contacts.clause", base.clause, CLIENT, v, nil, "contacts", "Get")
  check_where("where.compile(bare)", where.compile, v, where.bare)
  check_encode("value", v)
end
