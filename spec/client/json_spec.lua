-- The C core's JSON: exact integers, the array marker, UTF-8 and shape checks.
local core = require "dialoginsight.core"
local di = require "dialoginsight"

local is54 = math.type ~= nil

-- Whether decoded a is b: the same types, integer or float alike (Lua 5.4), the sign of a
-- zero, and the same members; or false, where they part.
local function same(a, b, path)
  if type(a) ~= type(b) then return false, path .. ": " .. tostring(a) .. " against " .. tostring(b) end
  if type(a) == "number" and math.type and math.type(a) ~= math.type(b) then
    return false, path .. ": " .. math.type(a) .. " against " .. math.type(b)
  end
  if type(a) ~= "table" then
    -- (-0 == 0 in Lua: the sign is told by 1/x)
    if a == b and (a ~= 0 or 1 / a == 1 / b) then return true end
    local function show(x) return (x == 0 and 1 / x < 0) and "-0" or tostring(x) end
    return false, path .. ": " .. show(a) .. " against " .. show(b)
  end
  for k, v in pairs(a) do
    local ok, why = same(v, b[k], path .. "." .. tostring(k))
    if not ok then return false, why end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, path .. "." .. tostring(k) .. ": absent against present" end
  end
  return true
end

describe("core.encode", function()
  it("writes integers exactly, also past cjson's 14 digits", function()
    assert.equal("[9007199254740991,-42,0]", core.encode({ 9007199254740991, -42, 0 }))
    assert.equal('{"n":123456789012345}', core.encode({ n = 123456789012345 }))
  end)

  it("writes non-integral floats so that they read back equal", function()
    local x = 0.1 + 0.2
    assert.equal(x, core.decode(core.encode({ x }))[1])
  end)

  it("writes a decimal in the shortest form that reads back the same (19.99, not 19.989999999999998)", function()
    assert.equal("[19.99,0.1,-0.5,123.456,0.3333333333333333,0.30000000000000004,1e-07]",
      core.encode({ 19.99, 0.1, -0.5, 123.456, 1 / 3, 0.1 + 0.2, 1e-7 }))
    -- every form still reads back as the double that was written
    for _, x in ipairs { 19.99, 0.1, 1 / 3, 0.1 + 0.2, 2 / 3 * 1e-5, 123456.789, 4.35e-300 } do
      assert.equal(x, core.decode(core.encode({ x }))[1])
      assert.is_true(#core.encode({ x }) <= 2 + #string.format("%.17g", x))
    end
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
    -- the private instance refuses NaN; the user's keeps cjson's default
    assert.is_true(cjson.decode("[NaN]")[1] ~= cjson.decode("[NaN]")[1])
  end)

  -- Text that is not JSON: lua-cjson read every one of these as a number
  -- (or, after a NUL, ignored the rest); each is now a decode error.
  local not_json = {
    { "NaN", '{"x": NaN}' },
    { "Infinity", '{"x": Infinity}' },
    { "-Infinity", '{"x": -Infinity}' },
    { "hex", '{"x": 0x10}' },
    { "a leading +", '{"x": +1}' },
    { "a leading zero", '{"x": 012}' },
    { "a bare fraction", '{"x": .5}' },
    { "a bare negative fraction", '{"x": -.5}' },
    { "a trailing dot", '{"x": 1.}' },
    { "a dot before the exponent", '{"x": 1.e3}' },
    { "an exponent without digits", '{"x": 1e}' },
    { "a misspelt literal", '{"x": tru}' },
    { "a NUL after the value", '{"x": 1}\0{"y": 2}' },
    { "a raw control character in a string", '{"x": "a\1b"}' },
    { "a raw newline in a string", '{"x": "a\nb"}' },
  }
  for _, case in ipairs(not_json) do
    it("refuses " .. case[1], function()
      local r, err = core.decode(case[2])
      assert.is_nil(r)
      assert.is_string(err)
      assert.truthy(err:find("at character %d+"), err)
    end)
  end

  it("still reads every JSON number form, and escaped control characters", function()
    local r = assert(core.decode('[0, -0, 7, -7, 0.5, -0.5, 1e3, 1E3, 1e+3, 25e-1, 1.5E-1, "a\\u0001\\n"]'))
    assert.same({ 0, 0, 7, -7, 0.5, -0.5, 1000, 1000, 1000, 2.5, 0.15, "a\1\n" }, r)
  end)

  it("returns integers beyond 2^53 exactly, as strings", function()
    local r = assert(core.decode('{"a": 9007199254740992, "b": 9007199254740993, "c": -9007199254740993,'
      .. ' "d": 9223372036854775807, "e": 9223372036854775808, "f": [18446744073709551616]}'))
    assert.equal(9007199254740992, r.a) -- 2^53 itself is exact
    if is54 then assert.equal("integer", math.type(r.a)) end
    assert.equal("9007199254740993", r.b)
    assert.equal("-9007199254740993", r.c)
    assert.equal("9223372036854775807", r.d)
    assert.equal("9223372036854775808", r.e)
    assert.equal("18446744073709551616", r.f[1])
  end)

  it("returns decimals a double cannot hold exactly as strings, as written", function()
    local r = assert(core.decode('{"p": 0.123456789012345, "q": 0.12345678901234567, "one": 1.0000000000000001,'
      .. ' "pi": 3.141592653589793238, "long": 12345678901234567.5, "big": 1e400, "neg": -1E400,'
      .. ' "tiny": 1e-400, "sub": 4e-324, "over": 1.79769313486232e308, "z": 0e999}'))
    assert.equal(0.123456789012345, r.p)
    assert.equal("0.12345678901234567", r.q) -- reads as ...566
    assert.equal("1.0000000000000001", r.one) -- reads as 1
    assert.equal("3.141592653589793238", r.pi)
    assert.equal("12345678901234567.5", r.long)
    assert.equal("1e400", r.big)
    assert.equal("-1E400", r.neg)
    assert.equal("1e-400", r.tiny)
    assert.equal("4e-324", r.sub) -- reads as 4.94e-324
    assert.equal("1.79769313486232e308", r.over)
    assert.equal(0, r.z)
  end)

  it("reads as numbers the decimals whose digits a double gives back", function()
    -- up to 15 significant digits always; beyond, when the double nearest
    -- to them prints with the same digits (what %.17g writes, for one)
    local r = assert(core.decode('[0.1234567890123456, 0.30000000000000004, 1.7976931348623157e308, 1e22, 2.5e-308]'))
    assert.equal(0.1234567890123456, r[1])
    assert.equal(0.1 + 0.2, r[2])
    assert.equal(1.7976931348623157e308, r[3])
    assert.equal(1e22, r[4])
    assert.equal(2.5e-308, r[5])
    for _, x in ipairs(r) do assert.equal("number", type(x)) end
  end)

  it("never yields an infinite, NaN or rounded-to-zero number", function()
    for _, text in ipairs { "[1e309]", "[-1e309]", "[2e-400]", "[1" .. ("0"):rep(400) .. "]" } do
      local v = assert(core.decode(text))[1]
      assert.is_string(v, text)
    end
  end)

  it("quotes inexact numbers in long replies too, outside strings only", function()
    -- past 64 bytes the scan works in chunks: the same rules must hold there
    local pad = (' "pad": "%s",'):format(("x"):rep(100))
    local text = "{" .. pad .. ' "s": "9007199254740993 \\" 1e400", "n": 9007199254740993,' .. pad
      .. ' "list": [' .. ("1, "):rep(40) .. "1e400]}"
    local r = assert(core.decode(text))
    assert.equal('9007199254740993 " 1e400', r.s)
    assert.equal("9007199254740993", r.n)
    assert.equal("1e400", r.list[41])
    assert.is_nil(core.decode("{" .. pad .. pad .. ' "x": NaN}'))
    assert.is_nil(core.decode("{" .. pad .. pad .. ' "x": "a\1b"}'))
  end)

  it("does not quote a number where a member name goes", function()
    local r, err = core.decode('{9007199254740993: 1}')
    assert.is_nil(r)
    assert.is_string(err)
  end)
end)

describe("a reply that is not JSON", function()
  local client = require "dialoginsight.client"
  local c = client.new({ base_url = "https://json.invalid/", key_id = 42, key = "k-json-spec-0123456789",
    project = 7, retries = 0 }, { now = function() return 0 end, sleep = function() end })
  local req = assert(c:prepare("contacts", "Get", {}))

  it("is a decode error, also when cjson alone would have read it", function()
    for _, body in ipairs { '{"Success": true, "TotalRecords": NaN}', '{"Success": true, "n": 1.}',
                            '{"Success": true}\0junk' } do
      local resp, err = c:interpret(req, 200, body)
      assert.is_nil(resp)
      assert.equal("decode", err.kind, body)
    end
  end)

  it("keeps a big id exact in a successful reply", function()
    local resp = assert(c:interpret(req, 200, '{"Success": true, "idRequest": 12345678901234567890}'))
    assert.equal("12345678901234567890", resp.idRequest)
  end)
end)

describe("core.decode_outcomes (a Merge reply read for the outcomes only)", function()
  local TOP = { "Success", "ErrorCode", "ErrorMessage", "idRequest", "CreatedRecords", "UpdatedRecords" }
  local REC = { "IdRecord", "Status", "ValidationResult", "Message" }

  -- what core.decode gives for the members decode_outcomes keeps
  local function projected(full)
    local t = {}
    for _, k in ipairs(TOP) do t[k] = full[k] end
    t.Records = {}
    for i, r in ipairs(full.Records or {}) do
      t.Records[i] = {}
      for _, k in ipairs(REC) do t.Records[i][k] = r[k] end
    end
    return t
  end

  it("gives what core.decode gives for each member it keeps, and nothing else", function()
    for _, text in ipairs {
      '{"Success":true,"ErrorCode":null,"ErrorMessage":null,"CreatedRecords":1,"UpdatedRecords":0,'
        .. '"Records":[{"IdRecord":42,"Status":"Created","ValidationResult":"OK","Message":null,'
        .. '"ID":{"key_f_EMail":"a@b.c"},"Data":{"f_X":[1,{"y":null}]},"Record":null}],"idRequest":123,'
        .. '"Trace":"Beginning request\\r\\n"}',
      '\239\187\191{\r\n  "Success": true,\r\n  "Records": [\r\n    {"IdRecord": 1.0, "Status": "Updated",'
        .. ' "ValidationResult": "OK", "Message": "caf\\u00e9 \\ud83d\\ude00 \\"q\\""}, {"IdRecord": 2e3}\r\n  ],'
        .. '\r\n  "idRequest": 9007199254740993\r\n}',
      -- a numeral of 64 characters and more, and containers where scalars go
      '{"Records":[{"IdRecord":1.' .. string.rep("0", 70) .. '}],"idRequest":' .. string.rep("1", 15) .. '.'
        .. string.rep("0", 60) .. ',"ErrorMessage":{"a":[1,null]}}',
    } do
      local full = assert(core.decode(text))
      local pick = assert(core.decode_outcomes(text))
      assert.same(projected(full), pick)
      assert.is_nil(pick.Trace)
      assert.is_nil(pick.Records[1].ID)
      if math.type then -- Lua 5.3+: integers stay integers
        for i, r in ipairs(pick.Records) do
          if r.IdRecord then assert.equal(math.type(full.Records[i].IdRecord), math.type(r.IdRecord)) end
        end
      end
    end
  end)

  it("reads a record that is not an object as core.decode does", function()
    local text = '{"Records":[[{"IdRecord":1,"Status":"Updated"}],null,7]}'
    local full, pick = assert(core.decode(text)), assert(core.decode_outcomes(text))
    assert.same(full.Records, pick.Records)
    assert.equal(core.null, pick.Records[2])
  end)

  it("gives the sync and merge_many the same Records when two spellings and none exact are there: none", function()
    -- (a hostile review: which spelling a table walk met first differed between the two)
    local merge = require "dialoginsight.records.merge"
    local names = { "records", "RECORDS", "rEcords" }
    for i = 1, 60 do
      local a, b = names[(i % 3) + 1], names[((i + 1) % 3) + 1]
      local pad = {}
      for k = 1, i % 17 do pad[#pad + 1] = '"x' .. k .. '":' .. k end
      local text = "{" .. table.concat(pad, ",") .. (#pad > 0 and "," or "") .. '"' .. a
        .. '":[{"Status":"Created"}],"' .. b .. '":[{"ValidationResult":"Refused"}],"Success":true}'
      assert.is_nil(merge.member(core.decode(text), "Records"), text)
      assert.is_nil(merge.member(core.decode_outcomes(text), "Records"), text)
    end
    -- one spelling, in any case, is read
    assert.is_table(merge.member(core.decode_outcomes('{"records":[{}]}'), "Records"))
  end)

  it("refuses what core.decode refuses", function()
    for _, text in ipairs { '{"a":NaN}', '{"a":0x10}', '{"a":1,}', '{"a":"\1"}', '{"a":1} x',
                            '{"a":tru}', '{"Records":[{"IdRecord":01}]}', '{"a":"\\ud800"}', '' } do
      assert.is_nil(core.decode(text), text)
      local v, why = core.decode_outcomes(text)
      assert.is_nil(v, text)
      assert.is_string(why)
    end
  end)
end)

describe("a JSON -0", function()
  -- Lua 5.4 reads it as the integer 0 (integral values are integers), so
  -- every runtime, and both readers, give 0: before, LuaJIT's core.decode
  -- gave -0 where decode_outcomes gave 0
  it("reads as 0 in core.decode and core.decode_outcomes alike, in every runtime", function()
    for _, text in ipairs { "-0", "-0.0", "-0e3" } do
      local full = assert(core.decode('{"Success":true,"CreatedRecords":' .. text .. ',"Records":[{"IdRecord":'
        .. text .. '}]}'))
      local pick = assert(core.decode_outcomes('{"Success":true,"CreatedRecords":' .. text
        .. ',"Records":[{"IdRecord":' .. text .. '}]}'))
      for _, v in ipairs { full.CreatedRecords, full.Records[1].IdRecord, pick.CreatedRecords,
                           pick.Records[1].IdRecord, core.decode(text) } do
        assert.equal(0, v)
        assert.equal(math.huge, 1 / v, text .. " read as -0")
      end
    end
  end)
end)

describe("core.decode_outcomes against core.decode #property", function()
  local property = require "support.property"
  -- the members kept, matched in any case (as the service matches names)
  local TOP = { success = true, errorcode = true, errormessage = true, idrequest = true,
                createdrecords = true, updatedrecords = true }
  local REC = { idrecord = true, status = true, validationresult = true, message = true }
  local NAMES = { "Records", "IdRecord", "Status", "ValidationResult", "Message", "Success", "ErrorCode",
                  "ErrorMessage", "idRequest", "CreatedRecords", "UpdatedRecords", "ID", "Data", "Trace",
                  "records", "validationResult", "STATUS", "idrecord", "x", "" }
  local NUMBERS = { "0", "-0", "-0.0", "-0e7", "7", "-12", "42.0", "1.5", "2e3", "1E-2", "9007199254740993", "-9007199254740993",
                    "0.30000000000000004", "0.1234567890123456789", "1e400", "4e-324", "123456789012345678901234",
                    "1." .. string.rep("0", 70), string.rep("9", 70), "0." .. string.rep("0", 66) .. "1" }
  local STRINGS = { '""', '"OK"', '"Updated"', '"caf\\u00e9 \\ud83d\\ude00"', '"a\\"b\\\\c\\n\\t\\/"', '"é"',
                    '"' .. string.rep("long", 40) .. '"' }

  -- A random JSON value as text, and its tree: { kind, text | items | members }.
  local gen
  local function ws(rng) return rng:pick { "", "", " ", "\r\n  ", "\t" } end
  local function object(rng, depth, names)
    local members, parts = {}, {}
    for _ = 1, rng:int(0, 6) do
      local name = rng:pick(names)
      local node = gen(rng, depth + 1, name)
      members[#members + 1] = { name, node }
      parts[#parts + 1] = ws(rng) .. '"' .. name .. '"' .. ws(rng) .. ":" .. ws(rng) .. node.text
    end
    return { kind = "object", members = members, text = "{" .. table.concat(parts, ",") .. ws(rng) .. "}" }
  end
  function gen(rng, depth, name)
    local r = rng:float()
    if depth < 5 and (name == "Records" and r < 0.8) then
      local items, parts = {}, {}
      for i = 1, rng:int(0, 5) do
        local node = rng:chance(0.75) and object(rng, depth + 1, NAMES) or gen(rng, depth + 1, nil)
        items[i] = node
        parts[i] = ws(rng) .. node.text
      end
      return { kind = "array", items = items, text = "[" .. table.concat(parts, ",") .. "]" }
    end
    if depth < 5 and r < 0.15 then return object(rng, depth, NAMES) end
    if depth < 5 and r < 0.3 then
      local items, parts = {}, {}
      for i = 1, rng:int(0, 4) do
        items[i] = gen(rng, depth + 1, nil)
        parts[i] = items[i].text
      end
      return { kind = "array", items = items, text = "[" .. table.concat(parts, "," .. ws(rng)) .. "]" }
    end
    if r < 0.4 then return { kind = "null", text = "null" } end
    if r < 0.5 then return { kind = "bool", text = rng:pick { "true", "false" } } end
    if r < 0.75 then return { kind = "number", text = rng:pick(NUMBERS) } end
    return { kind = "string", text = rng:pick(STRINGS) }
  end

  -- The last member of an object tree named name, or nil.
  local function member(node, name)
    local found
    for _, m in ipairs(node.members) do if m[1] == name then found = m[2] end end
    return found
  end

  -- What decode_outcomes must give, from what decode gave and the tree:
  -- the kept members under the names the server spelled.
  local function projected(full, tree)
    local t = {}
    for k, v in pairs(full) do
      local lk = k:lower()
      if TOP[lk] then
        t[k] = v
      elseif lk == "records" then
        local rnode = member(tree, k)
        if rnode.kind == "array" then
          local list = {}
          for i, item in ipairs(rnode.items) do
            local e = v[i]
            if item.kind == "object" then
              local r = {}
              for rk, rv in pairs(e) do if REC[rk:lower()] then r[rk] = rv end end
              e = r
            end
            list[i] = e
          end
          v = list
        end
        t[k] = v
      end
    end
    return t
  end

  it("gives what core.decode gives for every member it keeps, on random replies", function()
    property.check("decode_outcomes", { scenarios = 3000, seconds = 10 }, function(rng)
      local tree = object(rng, 0, NAMES)
      local text = (rng:chance(0.1) and "\239\187\191" or "") .. tree.text
      local full, ferr = core.decode(text)
      local pick, perr = core.decode_outcomes(text)
      if full == nil then
        return pick == nil, "decode refused (" .. tostring(ferr) .. ") but decode_outcomes took " .. text
      end
      if pick == nil then return false, "decode_outcomes refused (" .. tostring(perr) .. "): " .. text end
      local ok, why = same(projected(full, tree), pick, "reply")
      return ok, tostring(why) .. " in " .. text
    end)
  end)
end)

-- The hostile review of issue 26: JSON's decimal point is '.', whatever the process's
-- LC_NUMERIC (a library or a script may set a comma locale): strtod and printf would
-- read 1.5 as 1 and [1,5] as { 1.5, 5 }, and write 1.5 as 1,5.
describe("JSON numbers under a comma locale", function()
  it("read and write '.' whatever LC_NUMERIC says", function()
    local runtime = require "support.runtime"
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local made = os.execute("localedef -i de_DE -f UTF-8 " .. dir .. "/de_DE.UTF-8 >/dev/null 2>&1")
    assert(made == true or made == 0, "localedef could not make de_DE.UTF-8 (scripts/bootstrap installs `locales`)")
    local script = dir .. "/t.lua"
    local f = assert(io.open(script, "w"))
    f:write([[
assert(os.setlocale("de_DE.UTF-8", "numeric"), "the locale is not there")
local core = require "dialoginsight.core"
local v = assert(core.decode('[1,5, 1.5, 1.25e2, 0.1, 0.30000000000000004]'))
assert(#v == 6 and v[1] == 1 and v[2] == 5 and v[3] == 1.5 and v[4] == 125 and v[5] == 0.1, "decoded wrong")
assert(v[6] == 0.1 + 0.2, "decoded wrong")
assert(core.decode('{"a": 2.5}').a == 2.5)
local e = core.encode({ 1.5, 0.1, 19.99, 2.5e-300 })
assert(e == "[1.5,0.1,19.99,2.5e-300]", "encoded " .. tostring(e))
io.write("ok\n")
]])
    f:close()
    local p = io.popen("LOCPATH=" .. dir .. " " .. runtime.lua .. " " .. script .. " 2>&1")
    local out = p:read("*a")
    p:close()
    os.execute("rm -rf " .. dir)
    assert.equal("ok\n", out)
  end)
end)

-- Issue 26: a decoded table is made at its size once its container closes (its members
-- held on the Lua stack until then, src/di_json_pick.c).  Tables made at 8 slots up front
-- left each record's 1-member ID with 7 empty ones: a single-record Merge reply kept 1,024
-- bytes under Lua 5.4 where cjson's kept 856.
describe("core.decode's tables", function()
  local cjson = require "cjson"
  local REPLY = '{"Success":true,"ErrorCode":null,"ErrorMessage":null,"CreatedRecords":1,'
    .. '"UpdatedRecords":0,"Records":[{"IdRecord":1013,"Status":"Created","ValidationResult":"OK",'
    .. '"Message":null,"ID":{"key_f_EMail":"bench1@example.com"},"Data":null,"Record":null}],'
    .. '"idRequest":100001,"Trace":"Beginning request 100001"}'

  -- bytes a decoder's value of text takes, over 500 values kept (the collector stopped)
  local function bytes(decode, text)
    collectgarbage()
    collectgarbage()
    collectgarbage("stop")
    local before, kept = collectgarbage("count"), {}
    for i = 1, 500 do kept[i] = decode(text) end
    local after = collectgarbage("count")
    collectgarbage("restart")
    return (after - before) * 1024 / #kept
  end

  it("take no more memory than cjson's (which has no null members to drop)", function()
    for _, text in ipairs { REPLY, '{"key_f_EMail":"bench1@example.com"}', '{"a":1,"b":2,"c":3}',
                            '[{"a":1}]', '[1,2,3,4,5]' } do
      local ours, theirs = bytes(core.decode, text), bytes(cjson.decode, text)
      assert(ours <= theirs + 2, string.format("%s: %.1f bytes against cjson's %.1f", text, ours, theirs))
    end
  end)

  -- (the hostile review of issue 26's third step: an object was made at the members read,
  -- a repeated name counted each time: 100 objects of one name 1,025 times kept 4.8 MB
  -- under Lua 5.4 and 8 MB under 5.1, where they had kept 26 kB)
  it("are sized by the names an object keeps, not by a repeated name's count", function()
    local function kept(decode, text)
      collectgarbage()
      collectgarbage()
      local before = collectgarbage("count")
      local value = decode(text)
      collectgarbage()
      collectgarbage()
      return collectgarbage("count") - before, value
    end
    local obj = "{" .. string.rep('"a":0,', 1024) .. '"a":0}'
    local kb, value = kept(core.decode, "[" .. string.rep(obj .. ",", 99) .. obj .. "]")
    assert.equal(100, #value)
    assert(kb < 1000, kb .. " kB kept")
    local rec = '{"Status":"x"' .. string.rep(',"Status":"Created"', 1024) .. "}"
    kb, value = kept(core.decode_outcomes, '{"Success":true,"Records":[' .. string.rep(rec .. ",", 99) .. rec .. "]}")
    assert.equal("Created", value.Records[100].Status)
    assert(kb < 1000, kb .. " kB kept by decode_outcomes")
  end)
end)

describe("core.decode against a model of JSON #property", function()
  local property = require "support.property"
  local NAMES = { "a", "b", "A", "Records", "x", "" }
  -- the pieces of a string: its text in JSON, and what it reads as
  local PIECES = { { "a", "a" }, { "Z", "Z" }, { " ", " " }, { "7", "7" }, { '\\"', '"' },
                   { "\\\\", "\\" }, { "\\n", "\n" }, { "\\/", "/" }, { "\\u00e9", "\195\169" },
                   { "\195\169", "\195\169" }, { "\\ud83d\\ude00", "\240\159\152\128" } }
  local MAX_EXACT = 2 ^ 53

  -- A string of 0 to 30 pieces, mostly plain: its ends fall anywhere in the 8-byte
  -- words the parser tests at a time.
  local function str(rng)
    local text, value = {}, {}
    for i = 1, rng:int(0, 30) do
      local piece = rng:chance(0.8) and PIECES[rng:int(1, 4)] or rng:pick(PIECES)
      text[i], value[i] = piece[1], piece[2]
    end
    return '"' .. table.concat(text) .. '"', table.concat(value)
  end

  -- An integer of 1 to 16 digits, signed or not, within 2^53: read as that integer.
  local function integer(rng)
    local digits = { tostring(rng:int(1, 9)) }
    for i = 2, rng:int(1, 16) do digits[i] = tostring(rng:int(0, 9)) end
    local text = (rng:chance(0.3) and "-" or "") .. (rng:chance(0.05) and "0" or table.concat(digits))
    local n = tonumber(text)
    if math.abs(n) > MAX_EXACT then return "0", 0 end
    if n == 0 then return text, 0 end -- (-0 reads as 0)
    return text, math.tointeger and math.tointeger(n) or n
  end

  -- A random JSON value: its text and what core.decode must give (nil for null).  Now
  -- and then the document is a container of thousands of members, past what a parse
  -- holds on the stack (4,096 slots), its members small.
  local gen
  local function container(rng, depth, big)
    local n = big and rng:int(1000, 6000) or rng:int(0, 6)
    local object, parts, value = rng:chance(0.5), {}, {}
    for i = 1, n do
      local text, v = gen(rng, depth + 1)
      if object then
        -- a small set of names: repeats, the last one taking the place (a null one
        -- removing it); a big object's names are mostly its own
        local name = (big and rng:chance(0.9)) and ("m" .. i) or rng:pick(NAMES)
        parts[i] = '"' .. name .. '":' .. text
        value[name] = v
      else
        parts[i] = text
        if v == nil then v = core.null end
        value[i] = v
      end
    end
    if object then return "{" .. table.concat(parts, ",") .. "}", value end
    return "[" .. table.concat(parts, ", ") .. "]", value
  end
  function gen(rng, depth)
    local r = rng:float()
    if depth < 6 and r < 0.35 then return container(rng, depth, false) end
    if r < 0.5 then return "null", nil end
    if r < 0.6 then
      local b = rng:chance(0.5)
      return tostring(b), b
    end
    if r < 0.8 then return integer(rng) end
    return str(rng)
  end

  -- the raw pieces of a string to encode: plain ASCII, what JSON escapes, valid UTF-8,
  -- and (bad) bytes that are no UTF-8
  local RAW = { "a", "Z", " ", "~", '"', "\\", "\n", "\1", "\31", "\127", "\195\169", "\230\157\177",
                "\240\159\152\128" }
  local BAD = { "\255", "\192\175", "\237\160\128", "\226\130" }

  it("encodes random strings so that they read back, and refuses a bad byte at its place", function()
    property.check("encode_model", { scenarios = 2000, seconds = 10 }, function(rng)
      local parts, at = {}, nil
      for i = 1, rng:int(0, 40) do
        if not at and rng:chance(0.03) then
          at = #table.concat(parts) + 1
          parts[i] = rng:pick(BAD)
        else
          parts[i] = rng:chance(0.8) and RAW[rng:int(1, 4)] or rng:pick(RAW)
        end
      end
      local text = table.concat(parts)
      local json, err = core.encode({ text })
      if at then
        local want = "invalid UTF-8 at byte " .. at
        return json == nil and err:find(want, 1, true) ~= nil,
          string.format("%q: %s, not %s", text, tostring(err or json), want)
      end
      if not json then return false, string.format("%q refused: %s", text, err) end
      local back = core.decode(json)
      return back[1] == text, string.format("%q encoded as %s", text, json)
    end)
  end)

  it("gives the model's value for random documents: big containers, repeated names, escapes, long integers", function()
    property.check("decode_model", { scenarios = 400, seconds = 10 }, function(rng)
      local text, want = container(rng, 0, rng:chance(0.1))
      local got, err = core.decode(text)
      if not got then return false, "refused: " .. tostring(err) end
      return same(got, want, "value")
    end)
  end)
end)
