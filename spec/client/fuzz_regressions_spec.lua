-- Regressions of what the libFuzzer targets found (fuzz/README.md).  Each
-- case names its target and the input kept in fuzz/regressions/<target>/,
-- which `make fuzz` replays; these run the same inputs under both runtimes.
local core = require "dialoginsight.core"
local client = require "dialoginsight.client"
local errors = require "dialoginsight.errors"
local fields = require "dialoginsight.records.fields"
local record = require "dialoginsight.records.record"
local csv = require "dialoginsight.cli.csv"

local KEY = "fuzzSecretKey0123456789abcdef"

local function new_client()
  local c = client.new({ base_url = "https://fuzz.invalid/", key_id = 42, key = KEY,
    project = 7, retries = 0 }, { now = function() return 0 end, sleep = function() end })
  return c, assert(c:prepare("contacts", "Get", {}))
end

describe("fuzz_decode regressions: Client:interpret", function()
  -- fuzz/regressions/fuzz_decode/idrequest_not_a_scalar, idrequest_array
  it("keeps an idRequest that is not a string or number out of the error", function()
    local c, req = new_client()
    for _, body in ipairs {
      '{"Success":false,"ErrorCode":"TooManyRequests","idRequest":{"x":null}}',
      '{"Success":false,"ErrorCode":42,"ErrorMessage":{"a":1},"idRequest":[1,2]}',
      '{"Success":false,"idRequest":true}',
    } do
      local resp, err = c:interpret(req, 429, body, 2)
      assert.is_nil(resp)
      assert.is_true(errors.is_error(err))
      assert.equal("rate_limited", err.kind)
      assert.is_nil(err.request_id)
      assert.is_string(tostring(err)) -- raised "attempt to concatenate a table value"
    end
    local _, err = c:interpret(req, 400, '{"Success":false,"idRequest":"r-17"}')
    assert.equal("r-17", err.request_id)
    _, err = c:interpret(req, 400, '{"Success":false,"idRequest":17}')
    assert.equal(17, err.request_id)
  end)

  -- fuzz/regressions/fuzz_decode/key_in_error_code
  it("never shows the key when the server echoes it in ErrorCode or idRequest", function()
    local c, req = new_client()
    local _, err = c:interpret(req, 400, '{"Success":false,"ErrorCode":"' .. KEY
      .. '","ErrorMessage":"bad key ' .. KEY .. '","idRequest":"' .. KEY .. '"}')
    assert.equal("http", err.kind)
    for k, v in pairs(err) do
      if type(v) == "string" then assert.is_nil(v:find(KEY, 1, true), "err." .. k) end
    end
    assert.is_nil(tostring(err):find(KEY, 1, true))
  end)

  local function seed(name)
    local f = assert(io.open("fuzz/regressions/fuzz_decode/" .. name, "rb"))
    local bytes = f:read("*a")
    f:close()
    return bytes:sub(2) -- byte 1 picks the status; these are all 200s
  end

  -- fuzz/regressions/fuzz_decode/nan_and_infinity, hex_and_bare_dots,
  -- nul_after_reply, raw_control_in_string: cjson read them (the NUL as the
  -- end of the reply); the oracle of fuzz/lua/json_oracle.lua refuses them
  it("gives a decode error for a 200 reply that is not JSON", function()
    local c, req = new_client()
    for _, name in ipairs { "nan_and_infinity", "hex_and_bare_dots", "nul_after_reply",
                            "raw_control_in_string" } do
      local resp, err = c:interpret(req, 200, seed(name))
      assert.is_nil(resp, name)
      assert.equal("decode", err.kind, name)
    end
  end)

  -- fuzz/regressions/fuzz_decode/inexact_numbers: 1e400 read as inf, the
  -- others rounded silently
  it("returns every number of a reply exactly, or as the string it was", function()
    local c, req = new_client()
    local resp = assert(c:interpret(req, 200, seed("inexact_numbers")))
    assert.equal("9007199254740993", resp.idRequest)
    assert.equal("1e400", resp.a)
    assert.equal("1e-400", resp.b)
    assert.equal("1.0000000000000001", resp.c)
    assert.equal("-9223372036854775808", resp.d[1])
    assert.equal(0.1 + 0.2, resp.d[2])
  end)

  it("never shows a prefix of the key when quoting a reply that is not an object", function()
    local c, req = new_client()
    -- a JSON string reply: quoted in the error, cut at 60 bytes, which
    -- would cut an echoed key in two if the redaction came after the cut
    local _, err = c:interpret(req, 200, '"' .. string.rep("x", 50) .. KEY .. '"')
    assert.equal("decode", err.kind)
    assert.is_nil(tostring(err):find(KEY:sub(1, 8), 1, true), tostring(err))
  end)
end)

describe("fuzz_csv regressions: the reader and the host's writer", function()
  local paths = {}
  local function file(bytes)
    local p = os.tmpname()
    local f = assert(io.open(p, "wb")); f:write(bytes); f:close()
    paths[#paths + 1] = p
    return p
  end
  after_each(function()
    for _, p in ipairs(paths) do os.remove(p) end
    paths = {}
  end)
  local function read_all(bytes)
    local r = assert(core.csv_open(file(bytes)))
    local rows = { assert(r:header()) }
    while true do
      local row = r:next()
      if row == nil then break end
      assert.is_table(row) -- no refused rows in these files
      rows[#rows + 1] = row
    end
    local sep = r:separator()
    r:close()
    return rows, sep
  end
  local function write_all(rows, sep)
    local out = {}
    for i, row in ipairs(rows) do out[i] = csv.line(row, sep) end
    return table.concat(out)
  end

  -- fuzz/regressions/fuzz_csv/leading_blank_line_then_semicolons
  it("finds the separator on the header line, after blank lines", function()
    local rows, sep = read_all("\r\na;b\r\n1;2\r\n")
    assert.equal(";", sep)
    assert.same({ { "a", "b" }, { "1", "2" } }, rows)
  end)

  -- fuzz/regressions/fuzz_csv/quote_inside_unquoted_header
  it("reads quotes the way the parser does when finding the separator", function()
    local rows, sep = read_all('ab"c,d;e\n1,2;3\n')
    assert.equal(",", sep)
    assert.same({ { 'ab"c', "d;e" }, { "1", "2;3" } }, rows)
  end)

  -- fuzz/regressions/fuzz_csv/semicolon_in_quoted_header, bom_inside_first_field
  it("writes rows that read back the same, whatever separator they hold", function()
    for _, input in ipairs {
      '"a;b"\n"1;2"\n',
      'a;b;c\n"x,y";"1";z\n',
      "\239\187\191\239\187\191a,b\n1,2\n",
    } do
      local rows, sep = read_all(input)
      local back = read_all(write_all(rows, sep))
      assert.same(rows, back)
    end
  end)
end)

describe("fuzz_fields regressions: contact records and dates", function()
  local SCHEMA = fields.schema {
    ProjectFields = {
      { Code = "EMail", DataType = "Text", isKey = true },
      { Code = "Birthday", DataType = "Date" },
      { Code = "LastVisit", DataType = "DateTime" },
    },
  }
  local IDX = fields.index(SCHEMA)

  local function problems_of(contact, idx)
    local ok, rec, problems = pcall(function() return record.contacts(idx):map(contact) end)
    assert.is_true(ok, tostring(rec))
    return problems or {}
  end

  -- fuzz/regressions/fuzz_fields/date_number_out_of_range
  it("refuses a date number os.date cannot represent, without raising", function()
    for _, v in ipairs { 1e300, -1e300, 2^62 } do
      local p = problems_of({ EMail = "a@b.c", LastVisit = v }, IDX)
      assert.equal(1, #p)
      assert.equal("LastVisit", p[1].field)
    end
    if math.maxinteger then
      assert.equal(1, #problems_of({ EMail = "a@b.c", Birthday = math.maxinteger }, IDX))
    end
  end)

  it("refuses date tables whose parts are not whole numbers in range", function()
    local bad = {
      { year = 2020, month = 1.5, day = 1 },
      { year = 2020, month = 0 / 0, day = 1 },
      { year = 2020.5, month = 1, day = 1 },
      { year = 1e300, month = 1, day = 1 },
      { year = 2020, month = 1, day = 1, hour = "noon" },
      { year = 2020, month = 1, day = 1, min = {} },
      { year = 2020, month = 1, day = math.huge },
    }
    for i, d in ipairs(bad) do
      assert.equal(1, #problems_of({ EMail = "a@b.c", Birthday = d }, IDX), "case " .. i)
      -- without a schema the table is still read as a date, and refused
      assert.equal(1, #problems_of({ EMail = "a@b.c", Birthday = d }), "untyped case " .. i)
    end
    assert.equal(0, #problems_of({ EMail = "a@b.c", Birthday = { year = 2020, month = 2, day = 29 } }, IDX))
    assert.equal("2020.02.29", fields.date({ year = 2020, month = 2.0, day = 29 }))
  end)

  -- fuzz/regressions/fuzz_fields/shared_tables: the NUL check walked a
  -- table each time it met it, 3^64 steps for three self-references
  it("walks a value that shares its tables, or holds itself, once per table", function()
    local shared = { "a", "b" }
    local loop = {}
    loop[1], loop[2], loop[3] = loop, loop, { loop, shared, shared }
    -- f() within 20000 calls, else false and why
    local function bounded(f, ...)
      local calls, on = 0, true
      debug.sethook(function()
        calls = calls + 1
        if on and calls > 20000 then on = false; error("walked the value more than 20000 calls", 0) end
      end, "c")
      local res = table.pack(pcall(f, ...))
      on = false
      debug.sethook()
      return table.unpack(res, 1, res.n)
    end
    local ok, p = bounded(problems_of, { EMail = "a@b.c", Custom = loop })
    local ok2, p2 = bounded(problems_of, { EMail = "a@b.c", Custom = { shared, shared, { shared, "x\0y" } } })
    assert.is_true(ok, tostring(p))
    assert.is_true(ok2, tostring(p2))
    -- a NUL behind a table met twice is still found
    assert.equal(1, #p2)
    assert.matches("NUL", p2[1].message)
  end)

  -- fuzz/regressions/fuzz_fields/empty_field_name_in_where_table: the raise
  -- carried two positions (where.lua's, then the caller's)
  it("refuses an empty field name in a where table with one position, the caller's", function()
    local where = require "dialoginsight.records.where"
    for _, w in ipairs { { [""] = 1 }, { City = "x", [""] = 2 } } do
      local ok, msg = pcall(where.compile, w, where.bare)
      assert.is_false(ok)
      assert.matches("^[^:]*fuzz_regressions_spec%.lua:%d+: dialoginsight%.where: the field name", msg)
    end
  end)

  -- fuzz/regressions/fuzz_fields/huge_field_name_misspelling_search
  it("answers an unknown 1 MB field name quickly", function()
    local name = ("x"):rep(1024 * 1024)
    local t0 = os.clock()
    local p = problems_of({ EMail = "a@b.c", [name] = 1 }, IDX)
    assert.equal(1, #p)
    assert.is_true(os.clock() - t0 < 2, "took " .. (os.clock() - t0) .. " s")
    assert.equal("EMail", errors.closest("Emial", { "EMail", "Birthday" }))
  end)
end)
