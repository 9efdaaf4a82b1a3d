-- The transport and the response envelope: URL, TLS, HTTP versions, key
-- order, CRLF, BOM, case-insensitivity, integer printing.
local dir = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
package.path = dir .. "?.lua;" .. package.path
local H = require "helper"

local function list_projects(opts) return H.api("projects", "List", {}, opts) end

describe("sandbox envelope", function()
  before_each(function() H.reset() end)

  it("answers over HTTPS with TLS verified against the generated CA, for 127.0.0.1 and localhost", function()
    local r = list_projects()
    assert.equal(0, r.exit)
    H.ok(r)
    local r2 = H.api("projects", "List", {}, { url = H.BASE:gsub("127%.0%.0%.1", "localhost") .. "projects.ashx?method=List" })
    assert.equal(0, r2.exit, "the certificate must carry DNS:localhost")
    -- without the CA the certificate must not verify (it is not a public one)
    local p = io.popen("curl -sS -o /dev/null -d '{}' " .. H.q(H.BASE .. "projects.ashx?method=List") .. " 2>/dev/null; echo $?")
    local code = tonumber(p:read("a"):match("(%d+)%s*$"))
    p:close()
    assert.equal(60, code, "curl without --cacert should fail verification (exit 60)")
  end)

  it("speaks HTTP/2 and HTTP/1.1 over TLS, and plain HTTP on the second port", function()
    local r2 = list_projects({ http2 = true })
    assert.equal("2", r2.http_version)
    H.ok(r2)
    local r1 = list_projects({ http1 = true })
    assert.equal("1.1", r1.http_version)
    H.ok(r1)
    local rp = list_projects({ http = true })
    assert.equal("1.1", rp.http_version)
    assert.same(H.ok(r1).Records, H.ok(rp).Records)
    local entries = H.log()
    assert.equal(2, entries[1].http_version)
    assert.equal(1.1, entries[2].http_version)
  end)

  it("returns the envelope keys in order, indented with 2 spaces and CRLF line ends", function()
    local r = H.merge({ H.rec("order@example.com", { f_FirstName = "Olive" }) })
    assert.equal(200, r.status)
    assert.equal("application/json; charset=utf-8", r.headers["content-type"])
    assert.equal(tostring(#r.raw), r.headers["content-length"])
    local keys = {}
    for k in r.raw:gmatch('\r\n  "([%w]+)":') do keys[#keys + 1] = k end
    assert.same({ "Success", "ErrorCode", "ErrorMessage", "CreatedRecords", "UpdatedRecords", "Records",
      "idRequest", "Trace" }, keys)
    assert.truthy(r.raw:find('^{\r\n  "Success": true,\r\n  "ErrorCode": null,\r\n  "ErrorMessage": null,\r\n'))
    assert.is_nil(r.raw:find("[^\r]\n"), "every LF must be preceded by CR")
    assert.truthy(r.raw:find('\r\n    {\r\n      "IdRecord": ', 1, true), "nested objects are indented by 2 more spaces")
    assert.truthy(r.raw:find('\r\n}$'))
  end)

  it("prints integers as integers, never 1.0 or 1e+15", function()
    -- the largest an Integer field holds (Int32): 10 digits, no exponent
    local r = H.merge({ H.rec("int@example.com", { f_Points = 2147483647 }) }, { ReturnRecordsOnSuccess = true })
    assert.truthy(r.raw:find('"f_Points": 2147483647,', 1, true))
    assert.truthy(r.raw:find('"CreatedRecords": 1,', 1, true))
    assert.truthy(r.raw:match('"idRequest": %d+,'))
    assert.is_nil(r.raw:find("%d%.0[,\r]"))
    assert.is_nil(r.raw:find("e%+"))
  end)

  it("carries a multi-line Trace naming the service and method, and an increasing idRequest", function()
    local a = H.ok(H.merge({ H.rec("t@example.com") }))
    local b = H.ok(H.merge({ H.rec("t@example.com") }))
    assert.truthy(a.Trace:find("Beginning request", 1, true))
    assert.truthy(a.Trace:find("Targeted service: Contacts.Merge", 1, true))
    assert.truthy(a.Trace:find("Executing method completed with success", 1, true))
    assert.truthy(select(2, a.Trace:gsub("\r\n", "")) >= 3)
    assert.is_nil(a.Trace:find(H.KEY, 1, true), "the key never appears in a Trace")
    assert.is_true(b.idRequest > a.idRequest)
  end)

  it("switches a UTF-8 BOM on and off through the control API", function()
    local r = list_projects()
    assert.equal("{", r.raw:sub(1, 1))
    H.control("POST", "config", { bom = true })
    r = list_projects()
    assert.equal("\239\187\191{", r.raw:sub(1, 4))
    assert.equal(tostring(#r.raw), r.headers["content-length"])
    assert.is_true(H.ok(r).Success)
    H.control("POST", "config", { bom = false })
    assert.equal("{", list_projects().raw:sub(1, 1))
  end)

  it("matches service, method and property names case-insensitively and accepts a string idKey", function()
    local body = { authkey = { IDKEY = tostring(H.KEY_ID), key = H.KEY }, IDPROJECT = H.PROJECT,
      clause = H.fc("f_EMail", "Equal", "ann@example.com") }
    body.AuthKey = false
    local r = H.api("CONTACTS", "gEt", body, { url = H.BASE:gsub("webservices/ofc4", "WebServices/OFC4") .. "CONTACTS.ASHX?method=gEt" })
    local j = H.ok(r)
    assert.equal(1, #j.Records)
    assert.equal("ann@example.com", j.Records[1].f_EMail)
    local e = H.log()
    assert.equal("contacts", e[#e].service)
    assert.equal("get", e[#e].method)
  end)

  it("accepts any Content-Type and reads the raw body", function()
    for _, ct in ipairs({ "application/x-www-form-urlencoded", "text/plain", "application/octet-stream" }) do
      local r = H.api("projects", "List", {}, { content_type = ct })
      H.ok(r)
    end
  end)

  it("returns flat Get records with the documented field names", function()
    local j = H.ok(H.get(H.fc("f_EMail", "Equal", "ann@example.com")))
    local rec = j.Records[1]
    assert.equal(1, rec.idContact)
    assert.equal("Ann", rec.f_FirstName)
    assert.equal("Montréal", rec.f_City)
    assert.equal("1985.03.14", rec.f_BirthDate)
    assert.equal(120, rec.f_Points)
    assert.is_true(rec.optin_Newsletter)
    assert.is_false(rec.optin_Promotions)
    assert.equal(H.null, j.ErrorCode)
  end)
end)
