-- Every error row of sandbox/README.md ("Errors"): status, ErrorCode, and the envelope around it.
local dir = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = dir .. "?.lua;" .. package.path
local H = require "helper"

local function fails(r, status, code)
  assert.equal(status, r.status, r.raw)
  assert.truthy(r.json, "the error body is still the JSON envelope: " .. r.raw)
  assert.is_false(r.json.Success)
  assert.equal(code, r.json.ErrorCode)
  assert.equal("string", type(r.json.ErrorMessage))
  assert.equal("number", type(r.json.idRequest))
  assert.truthy(r.raw:find('^{\r\n  "Success": false,\r\n  "ErrorCode": "' .. code .. '",\r\n  "ErrorMessage": '))
  assert.truthy(r.raw:find('"idRequest": %d+,\r\n  "Trace": "'))
  assert.is_nil(r.raw:find(H.KEY, 1, true))
  return r.json
end

describe("sandbox errors", function()
  before_each(function() H.reset() end)

  it("answers 400 InvalidRequest to a body that is not JSON", function()
    fails(H.api("contacts", "Merge", "{not json"), 400, "InvalidRequest")
    fails(H.api("contacts", "Merge", "[1,2]"), 400, "InvalidRequest")
    fails(H.api("contacts", "Merge", "[]"), 400, "InvalidRequest")
    fails(H.api("contacts", "Merge", "\"text\""), 400, "InvalidRequest")
    fails(H.api("contacts", "Merge", ""), 400, "InvalidRequest")
  end)

  it("answers 401 InvalidAuthKey to a wrong key, an unknown idKey or no AuthKey", function()
    fails(H.call("projects", "Get", { AuthKey = H.auth(H.KEY_ID, "sbx-wrong") }), 401, "InvalidAuthKey")
    fails(H.call("projects", "Get", { AuthKey = H.auth(999999, H.KEY) }), 401, "InvalidAuthKey")
    fails(H.call("projects", "Get", { AuthKey = false }), 401, "InvalidAuthKey")
    local e = H.log()
    assert.equal(401, e[#e].status)
    assert.equal("InvalidAuthKey", e[#e].code)
  end)

  it("answers 200 AccessDenied for a project or table the key may not use", function()
    fails(H.api("projects", "Get", { idProject = H.OTHER_PROJECT }), 200, "AccessDenied")
    fails(H.api("contacts", "Get", { idProject = H.OTHER_PROJECT, Clause = H.fc("f_EMail", "IsNotNull") }), 200, "AccessDenied")
    fails(H.api("relationaltables", "Get", { idTable = 502, Clause = H.fc("idOrder", "IsNotNull") }), 200, "AccessDenied")
    -- the key without permissions authenticates but may use nothing
    local np = H.auth(H.NOPERM_KEY_ID, H.NOPERM_KEY)
    local list = H.ok(H.api("projects", "List", { AuthKey = np }))
    assert.same({}, list.Records)
    fails(H.api("projects", "Get", { AuthKey = np, idProject = H.PROJECT }), 200, "AccessDenied")
    fails(H.api("relationaltables", "Get", { AuthKey = np, idTable = H.TABLE, Clause = H.fc("idReservation", "IsNotNull") }),
      200, "AccessDenied")
  end)

  it("answers 404 UnknownMethod to an unknown service or method", function()
    fails(H.call("contacts", "Frobnicate", {}), 404, "UnknownMethod")
    fails(H.call("nosuchservice", "List", {}), 404, "UnknownMethod")
    fails(H.api(nil, nil, {}, { url = H.BASE .. "contacts.ashx" }), 404, "UnknownMethod")
  end)

  it("answers 200 InvalidParameter to a missing or mistyped parameter", function()
    fails(H.api("contacts", "Get", { Clause = H.fc("f_EMail", "IsNotNull") }), 200, "InvalidParameter") -- no idProject
    fails(H.api("contacts", "Get", { idProject = "abc", Clause = H.fc("f_EMail", "IsNotNull") }), 200, "InvalidParameter")
    fails(H.call("contacts", "Get", {}), 200, "InvalidParameter") -- no Clause
    fails(H.call("contacts", "Merge", { Records = "x" }), 200, "InvalidParameter")
    fails(H.get(H.fc("f_Nope", "Equal", "x")), 200, "InvalidParameter")
    fails(H.get(H.fc("f_EMail", "Resembles", "x")), 200, "InvalidParameter")
    fails(H.get(H.fc("f_Points", "GreaterThan", "lots")), 200, "InvalidParameter")
    fails(H.get(H.fc("f_EMail", "Equal", "x"), { MaxRows = -1 }), 200, "InvalidParameter")
    fails(H.api("relationaltables", "Get", { Clause = H.fc("idReservation", "IsNotNull") }), 200, "InvalidParameter")
  end)

  it("answers 429 TooManyRequests with Retry-After when the rate limit is exceeded", function()
    H.control("POST", "ratelimit", { rate = 1, burst = 2 })
    H.ok(H.api("projects", "List", {}))
    H.ok(H.api("projects", "List", {}))
    local r = H.api("projects", "List", {})
    fails(r, 429, "TooManyRequests")
    assert.truthy(tonumber(r.headers["retry-after"]) >= 1)
  end)

  it("answers 500 ServerError and 503 ServerError for server faults", function()
    H.faults({ { type = "status", status = 500, next = 1 }, })
    fails(H.api("projects", "List", {}), 500, "ServerError")
    H.faults({ { type = "status", status = 503, next = 1, retry_after = 7 } })
    local r = H.api("projects", "List", {})
    fails(r, 503, "ServerError")
    assert.equal("7", r.headers["retry-after"])
    H.ok(H.api("projects", "List", {}))
  end)

  it("refuses non-POST calls with InvalidRequest", function()
    fails(H.curl({ url = H.BASE .. "projects.ashx?method=List" }), 400, "InvalidRequest")
  end)
end)
