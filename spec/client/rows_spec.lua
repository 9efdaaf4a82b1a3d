-- The C column plan (core.row_plan, reader:next_record, src/di_rows.c)
-- against the Lua record builder, value by value: every value a sync can
-- meet in a column of each kind, read both ways (fuzz/lua/rows_check.lua:
-- what the plan takes the builder takes, to the same JSON; what it declines
-- the builder refuses), and what the plan makes of the values that matter.
package.path = "fuzz/lua/?.lua;" .. package.path
local core = require "dialoginsight.core"
local csv = require "dialoginsight.cli.csv"
local fields = require "dialoginsight.records.fields"
local rows_check = require "rows_check"

local TMP = os.tmpname()

local function write_csv(header, rows)
  local out = { csv.line(header) }
  for i, row in ipairs(rows) do out[i + 1] = csv.line(row) end
  local f = assert(io.open(TMP, "wb"))
  f:write(table.concat(out))
  f:close()
  return TMP
end

-- One column of the kind, the key, holding each value in turn (a value in a
-- Text key column beside it for the kinds that hold no data).
local function check_kind(kind, values)
  if kind == "id" or kind == "raw" then
    local rows = {}
    for i, v in ipairs(values) do rows[i] = { v, "k" .. i } end
    return rows_check.check(write_csv({ "a", "key" }, rows), { kind, "Text" }, 2)
  end
  local rows = {}
  for i, v in ipairs(values) do rows[i] = { v } end
  return rows_check.check(write_csv({ "a" }, rows), { kind }, 1)
end

-- The record the plan makes of one row (kinds, keycol as rows_check), or
-- nil when it declines the row.
-- The batch's JSON after the plan took row (or nil when it declined it).
local function planned_json(kinds, row)
  local steps, header = {}, {}
  for j, kind in ipairs(kinds) do
    header[j] = "c" .. j
    steps[j] = kind ~= "skip" and { kind = kind, wire = kind == "id" and "idContact" or "f_c" .. j,
                                    key = j == 1 } or false
  end
  local r = assert(core.csv_open(write_csv(header, { row })))
  r:header()
  local b = core.row_batch()
  local got = r:next_record(core.row_plan(steps, fields.MAX_TEXT), b)
  r:close()
  if got ~= true then return nil end
  return core.encode(b)
end

local function planned(kinds, row)
  local json = planned_json(kinds, row)
  return json and core.decode(json)[1]
end

local function dates()
  local out = {}
  for _, y in ipairs { "0000", "0001", "1900", "2000", "2023", "2024", "999" } do
    for _, mo in ipairs { "0", "00", "1", "01", "2", "02", "12", "13", "1a", "012" } do
      for _, d in ipairs { "0", "1", "01", "28", "29", "30", "31", "32", "" } do
        for _, sep in ipairs { "-", "/", ".", " " } do
          out[#out + 1] = y .. sep .. mo .. sep .. d
        end
      end
    end
  end
  local n = #out
  for _, rest in ipairs { "T10:30", " 23:59:59", "T24:00", "T9:5", "T9:05", "T09:60", "T10:30:", "T10:305",
                          "T10:3055", "T10:30:60", "x", " 10:30:5", "T10:30:5:", "t10:30", "T100:30",
                          "T10:30:059", "  10:30", "T10:30 " } do
    for i = 1, n, 7 do out[#out + 1] = out[i] .. rest end
  end
  return out
end

local INTEGERS = { "0", "-0", "1", "-1", " 12 ", "\t7\v", "007", "1.0", "1e3", "0x10", "+1", "--1", "1 2",
  "9007199254740992", "-9007199254740992", "9007199254740993", "09007199254740992",
  "99999999999999999999", "١", " ", "-", "12a" }
local DECIMALS = { "1.5", "-0.0", "1e5", "1e999", "-1e999", "0x1p4", "0x10", "nan", "inf", "-inf", ".5", "5.",
  " 2 ", "1,5", "0x", "1e", "9007199254740992", "9007199254740993", "1e16", "123456789.123456789",
  "0.1", "1e-300", "4.9e-324", "١" }
local BOOLEANS = { "1", "0", "true", "TRUE", "tRuE", "false", "FALSE", "yes", "2", "t", "true ", " true",
  "truex" }
local TEXTS = { "a", string.rep("é", 100), string.rep("é", 101), string.rep("a", 100), string.rep("a", 101),
  string.rep("a", 99) .. "é", "\255", "\195", "\237\160\128", "\244\144\128\128", "\192\128", "a\0b",
  "tab\there", 'quote"s', "back\\slash", "\1\31", "😀 emoji", "ligne\r\nsuivante" }

describe("the C column plan agrees with the record builder", function()
  teardown(function() os.remove(TMP) end)

  it("on dates and date-times, in every form the builder reads", function()
    local values = dates()
    for _, kind in ipairs { "Date", "DateTime" } do
      local c = check_kind(kind, values)
      assert.are.equal(#values, c.taken + c.declined)
      -- both outcomes are reached: a plan that took or declined every
      -- value would pass the agreement check vacuously
      assert.is_true(c.taken > 300, kind .. " taken " .. c.taken)
      assert.is_true(c.declined > 1000, kind .. " declined " .. c.declined)
    end
  end)

  for kind, values in pairs { Integer = INTEGERS, id = INTEGERS, Decimal = DECIMALS, Boolean = BOOLEANS,
                              Text = TEXTS, any = TEXTS, raw = TEXTS } do
    it("on " .. kind .. " values", function()
      local c = check_kind(kind, values)
      assert.are.equal(#values, c.taken + c.declined)
      assert.is_true(c.taken > 0 and c.declined > 0, kind .. ": " .. c.taken .. " taken")
    end)
  end

  it("writes the wire forms", function()
    assert.are.same({ ID = { key_f_c1 = "2024.02.29" }, Data = {} }, planned({ "Date" }, { "2024-2-29" }))
    assert.is_nil(planned({ "Date" }, { "2023-02-29" }))
    assert.is_nil(planned({ "Date" }, { "2024-13-05" }))
    assert.are.same({ ID = { key_f_c1 = "2024.01.02 09:05:00" }, Data = {} },
      planned({ "DateTime" }, { "2024/01/02T9:05" }))
    assert.are.same({ ID = { key_f_c1 = "a" }, Data = { f_c2 = -7, f_c3 = 16, f_c4 = true } },
      planned({ "Text", "Integer", "Decimal", "Boolean" }, { "a", " -7 ", "0x10", "TRUE" }))
    assert.are.same({ ID = { key_f_c1 = "a" }, Data = { f_c2 = 1.5 } }, planned({ "Text", "Decimal" }, { "a", "1.5" }))
    -- a Decimal goes out in its shortest form, as the encoder writes it
    assert.matches('"f_c2":19.99[,}]', planned_json({ "Text", "Decimal" }, { "a", "19.99" }))
    assert.matches('"f_c2":0.1[,}]', planned_json({ "Text", "Decimal" }, { "a", "0.1" }))
    -- idContact identifies the record: the key stays in Data
    assert.are.same({ ID = { idContact = 12 }, Data = { f_c1 = "a" } }, planned({ "Text", "id" }, { "a", "012" }))
    assert.is_nil(planned({ "Text", "id" }, { "a", "0" }))
    -- an empty cell is left out; a skipped column too
    assert.are.same({ ID = { key_f_c1 = "a" }, Data = {} }, planned({ "Text", "Integer", "skip" }, { "a", "", "9" }))
    -- the key missing: declined (the builder says why)
    assert.is_nil(planned({ "Text", "Integer" }, { "", "1" }))
    assert.are.same({ ID = { key_f_c1 = "a" }, Data = { f_c2 = "x\"\\\1é" } },
      planned({ "Text", "Text" }, { "a", "x\"\\\1é" }))
  end)

  it("declines a NUL in any text, which the builder refuses for the record alone", function()
    local record = require "dialoginsight.records.record"
    for _, kind in ipairs { "Text", "any", "raw" } do
      assert.is_nil(planned({ "Text", kind }, { "a", "x\0y" }), kind)
      assert.is_table(planned({ "Text", kind }, { "a", "x\1y" }), kind)
    end
    assert.is_nil(planned({ "Text" }, { "\0" }))
    local b = record.contacts(nil, "EMail")
    local _, problems = b:map { EMail = "a@example.com", FirstName = "An\0n" }
    assert.are.same({ { field = "FirstName",
      message = "holds a NUL character (byte 0), which the service refuses in text" } }, problems)
    _, problems = b:map { EMail = "a@example.com", ["First\0Name"] = "Ann" }
    assert.truthy(problems[1].message:find("^cannot be a field name: it holds a NUL character"))
    _, problems = record.rows("id"):map { id = 1, ["c\0"] = "x", d = { nested = "a\0" } }
    assert.are.equal(2, #problems)
  end)

  it("picks records of a batch into a batch of their own (a refused call sent again in parts)", function()
    local b = core.row_batch()
    for i = 1, 3 do assert.is_true(b:add({ ID = { key_f_a = "r" .. i }, Data = {} }, i + 1)) end
    local p = b:pick { 3, 1 }
    assert.are.equal(2, p:count())
    assert.are.same({ 4, 2 }, { p:line(1), p:line(2) })
    assert.are.same({ { ID = { key_f_a = "r3" }, Data = {} }, { ID = { key_f_a = "r1" }, Data = {} } },
      core.decode(core.encode(p)))
    assert.are.equal("[]", core.encode(b:pick {}))
    assert.has_error(function() b:pick { 4 } end)
    assert.has_error(function() b:pick { 0 } end)
    p:close()
    b:close()
  end)

  it("keeps the rows it took for the rejects file, and frees them on close", function()
    local r = assert(core.csv_open(write_csv({ "a", "b" }, { { "x", "1" }, { "y", "" }, { "z", "q" } })))
    r:header()
    local plan = core.row_plan({ { kind = "Text", wire = "f_a", key = true }, { kind = "Integer", wire = "f_b" } },
      fields.MAX_TEXT)
    local b = core.row_batch()
    assert.are.same({ true, 2 }, { r:next_record(plan, b) })
    assert.are.same({ true, 3 }, { r:next_record(plan, b) })
    assert.are.same({ { "z", "q" }, 4 }, { r:next_record(plan, b) }) -- declined: the row, for the builder
    assert.is_true(b:add({ ID = { key_f_a = "z" }, Data = {} }, 4))
    local ok, why = b:add({ ID = { key_f_a = "\255" }, Data = {} }, 5)
    assert.is_nil(ok)
    assert.are.equal("ID.key_f_a: invalid UTF-8 at byte 1", why)
    assert.are.equal(3, b:count())
    assert.are.same({ "x", "1" }, b:row(1))
    assert.are.same({ "y", "" }, b:row(2))
    assert.is_nil(b:row(3))
    assert.are.same({ 2, 3, 4 }, { b:line(1), b:line(2), b:line(3) })
    local json = core.encode { Records = b }
    local built = '{"Records":[{"ID":{"key_f_a":"x"},"Data":{"f_b":1}},{"ID":{"key_f_a":"y"},"Data":{}},'
    assert.are.equal(built, json:sub(1, #built))
    assert.are.same({ ID = { key_f_a = "z" }, Data = {} }, core.decode(json).Records[3])
    assert.has_error(function() b:row(4) end)
    b:close()
    assert.are.equal(0, b:count())
    assert.are.equal('[]', core.encode(b))
    r:close()
  end)

  it("gives a row's key as records/merge.lua's key() does, and moves a record to the next batch", function()
    local merge = require "dialoginsight.records.merge"
    local values = { "Ann@Example.COM", "  ann@example.com\t", "007", "0", "00", "12 ", "x y", "",
                     "   ", "ÉLODIE@exemple.fr", "+12", "1e3", "-5" }
    local rows = {}
    for i, v in ipairs(values) do rows[i] = { "k" .. i, v, "t" .. i } end
    local r = assert(core.csv_open(write_csv({ "k", "v", "t" }, rows)))
    r:header()
    local plan = core.row_plan({ { kind = "Text", wire = "f_k", key = true }, { kind = "any", wire = "f_v" },
                                 { kind = "Text", wire = "f_t" } }, fields.MAX_TEXT)
    local b = core.row_batch()
    for i, v in ipairs(values) do
      assert.is_true((r:next_record(plan, b)))
      assert.are.equal(merge.key(v), b:key(i, 2), "value " .. v)
    end
    r:close()
    assert.are.same({ "ann@example.com", "ann@example.com", "7", "0", "0" },
      { b:key(1, 2), b:key(2, 2), b:key(3, 2), b:key(4, 2), b:key(5, 2) })
    assert.is_nil(b:key(1, 4))
    assert.is_true(b:add({ ID = { key_f_k = "lua" }, Data = {} }, 99))
    assert.is_nil(b:key(#values + 1, 1)) -- a record built in Lua: its row is the caller's
    -- the last record moves, JSON, line and fields, to the end of another batch
    local to = core.row_batch()
    assert.is_true(to:add({ ID = { key_f_k = "first" }, Data = {} }, 1))
    b:move_last(to) -- the Lua one
    b:move_last(to) -- the last row the plan took
    assert.are.equal(#values - 1, b:count())
    assert.are.same({ 1, 99, #values + 1 }, { to:line(1), to:line(2), to:line(3) })
    assert.are.same({ "k13", "-5", "t13" }, to:row(3))
    assert.are.equal("-5", to:key(3, 2))
    assert.are.same({ "k12", "1e3", "t12" }, b:row(#values - 1))
    local moved = core.decode(core.encode(to))
    assert.are.same({ "first", "lua", "k13" }, { moved[1].ID.key_f_k, moved[2].ID.key_f_k, moved[3].ID.key_f_k })
    assert.are.equal(#values - 1, #core.decode(core.encode(b)))
    assert.has_error(function() b:move_last(b) end)
    assert.has_error(function() core.row_batch():move_last(to) end)
    b:close()
    to:close()
  end)

  it("refuses what is not a plan or a batch", function()
    local r = assert(core.csv_open(write_csv({ "a" }, { { "x" } })))
    r:header()
    assert.has_error(function() r:next_record({}, core.row_batch()) end)
    assert.has_error(function() r:next_record(core.row_plan({}, 100), {}) end)
    assert.has_error(function() core.row_plan({ { kind = "Texte", wire = "f_a" } }, 100) end)
    assert.has_error(function() core.row_plan({}) end)
    r:close()
  end)

  it("is the only userdata the encoder copies as JSON: a plan or a reader is refused", function()
    local r = assert(core.csv_open(write_csv({ "a" }, { { "x" } })))
    for _, u in ipairs { core.row_plan({}, 100), r } do
      local json, why = core.encode { Records = u }
      assert.is_nil(json)
      assert.matches("^Records: a userdata cannot be encoded as JSON", why)
    end
    r:close()
  end)
end)
