-- The C core's JSON: exact integers, the array marker, UTF-8 and shape checks.
local core = require "dialoginsight.core"
local di = require "dialoginsight"

local is54 = math.type ~= nil

describe("core.encode", function()
  it("writes integers exactly, also past cjson's 14 digits", function()
    assert.equal("[9007199254740991,-42,0]", core.encode({ 9007199254740991, -42, 0 }))
    assert.equal('{"n":123456789012345}', core.encode({ n = 123456789012345 }))
  end)

  it("writes non-integral floats so that they read back equal", function()
    local x = 0.1 + 0.2
    assert.equal(x, core.decode(core.encode({ x }))[1])
  end)

  it("writes an empty table as {} and a marked one as []", function()
    assert.equal("{}", core.encode({}))
    assert.equal("[]", core.encode(di.array()))
    assert.equal('{"Records":[]}', core.encode({ Records = di.array {} }))
    local t = di.array { 1, 2 }
    assert.equal("[1,2]", core.encode(t))
  end)

  it("writes di.null as null", function()
    assert.equal('{"Tag":null}', core.encode({ Tag = di.null }))
  end)

  it("escapes quotes, backslashes and control characters", function()
    assert.equal('"a\\"b\\\\c\\n\\u0001"', core.encode('a"b\\c\n\1'))
  end)

  it("passes valid UTF-8 through untouched", function()
    assert.equal('"Québec 東京 😀"', core.encode("Québec 東京 😀"))
  end)

  local refused = {
    { "invalid UTF-8 byte", { Data = { f_City = "Mont\255réal" } }, "Data.f_City: invalid UTF-8 at byte 5" },
    { "overlong UTF-8", { "\192\175" }, "[1]: invalid UTF-8" },
    { "UTF-16 surrogate", { "\237\160\128" }, "invalid UTF-8" },
    { "truncated UTF-8", { a = "\226\130" }, "a: invalid UTF-8" },
    { "NaN", { x = 0 / 0 }, "x: NaN and infinity" },
    { "infinity", { x = math.huge }, "x: NaN and infinity" },
    { "integer past 2^53", { x = 2 ^ 53 + 2 }, "x: integer beyond 2^53" },
    { "nil hole", { Records = { 1, nil, 3 } }, "Records: array has a nil hole at index 2" },
    { "mixed table", { Records = { 1, x = 2 } }, "Records: table mixes array items and named fields" },
    { "function", { f = print }, "f: a function cannot be encoded" },
    { "boolean key", { [true] = 1 }, "a table key of type boolean" },
    { "fractional key", { [1.5] = 1 }, "neither a field name nor an array index" },
  }
  for _, case in ipairs(refused) do
    it("refuses " .. case[1] .. ", naming where", function()
      local s, err = core.encode(case[2])
      assert.is_nil(s)
      assert.truthy(err:find(case[3], 1, true), err)
    end)
  end

  it("refuses a cycle", function()
    local t = { Data = {} }
    t.Data.back = t
    local s, err = core.encode(t)
    assert.is_nil(s)
    assert.truthy(err:find("Data.back: table contains itself", 1, true), err)
  end)

  it("refuses nesting deeper than 64 levels, without crashing", function()
    local t = {}
    local cur = t
    for _ = 1, 200 do cur.x = {}; cur = cur.x end
    local s, err = core.encode(t)
    assert.is_nil(s)
    assert.truthy(err:find("nested deeper than 64 levels", 1, true), err)
  end)

  it("names array positions inside objects", function()
    local _, err = core.encode({ Records = { { ID = {} }, { Data = { f_X = "\255" } } } })
    assert.truthy(err:find("^Records%[2%]%.Data%.f_X: "), err)
  end)
end)

describe("core.decode", function()
  it("returns integers as integers", function()
    local r = core.decode('{"idRequest": 123456, "Records": [{"idContact": 42}], "x": 2.5}')
    assert.equal(123456, r.idRequest)
    assert.equal(42, r.Records[1].idContact)
    assert.equal(2.5, r.x)
    if is54 then
      assert.equal("integer", math.type(r.idRequest))
      assert.equal("integer", math.type(r.Records[1].idContact))
      assert.equal("float", math.type(r.x))
    end
  end)

  it("drops null members of objects and keeps nulls in arrays", function()
    local r = core.decode('{"ErrorCode": null, "a": [1, null, 3]}')
    assert.is_nil(r.ErrorCode)
    assert.equal(3, #r.a)
    assert.equal(di.null, r.a[2])
  end)

  it("tolerates a UTF-8 BOM and CRLF indentation", function()
    local r = core.decode('\239\187\191{\r\n  "Success": true,\r\n  "idRequest": 7\r\n}')
    assert.is_true(r.Success)
    assert.equal(7, r.idRequest)
  end)

  it("returns nil and a message for malformed JSON", function()
    local r, err = core.decode('{"Success": tr')
    assert.is_nil(r)
    assert.is_string(err)
  end)

  it("does not change the user's cjson settings or numbers", function()
    local cjson = require "cjson"
    assert.equal("userdata", type(cjson.decode("[null]")[1]))
  end)
end)
