-- The CSV reader (src/di_csv.c) when a record never ends (issue 13): a
-- runaway quote is refused with the line it opened on and reading resumes on
-- the next line; a record over the size limit is one bad record, not the end
-- of the file; every line of the file is accounted for (r:lines()).
local core = require "dialoginsight.core"

local function file(content)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
  return path
end

-- Every record after the header: { row =, line =, why =, bad = }, and the
-- reader's lines() at the end.
local function read(content, opts)
  local path = file(content)
  local r = assert(core.csv_open(path, opts))
  os.remove(path)
  assert(r:header())
  local out = {}
  for _ = 1, 100000 do
    local row, a, line, bad = r:next()
    if row == nil then
      assert.is_nil(a)
      break
    end
    if row then
      out[#out + 1] = { row = row, line = a }
    else
      out[#out + 1] = { line = line, why = a, bad = bad }
    end
  end
  local lines, blank = r:lines()
  r:close()
  return out, lines, blank
end

describe("CSV reader: a record that never ends (core.csv_open)", function()
  it("an unterminated quote is cut at its line's end; the rows after it are read", function()
    local body = { "email,name" }
    for i = 1, 30000 do
      body[#body + 1] = i == 10 and 's10@example.com,"Bob,Paris' or ("s" .. i .. "@example.com,N" .. i)
    end
    local out, lines = read(table.concat(body, "\n") .. "\n")
    assert.are.equal(30000, #out)
    assert.are.equal(11, out[10].line)
    assert.are.same({ "s10@example.com", "Bob,Paris" }, out[10].bad)
    assert.are.equal("line 11: unterminated quote: the quoted field opened on line 11 never "
      .. "closes (the file ends on line 30001); the record is cut at the end of line 11 and "
      .. "reading resumes on line 12", out[10].why)
    assert.are.same({ "s11@example.com", "N11" }, out[11].row)
    assert.are.equal(12, out[11].line)
    assert.are.same({ "s30000@example.com", "N30000" }, out[30000].row)
    assert.are.equal(30001, lines)
  end)

  it("a stray quote that pairs with a later field's quote does not swallow the lines between", function()
    local out, lines = read('a,b\n1,"Bob\n2,two\n3,"x, y"\n4,four\n')
    assert.are.equal(4, #out)
    assert.are.same({ "1", "Bob" }, out[1].bad)
    assert.truthy(out[1].why:find("^line 2: unterminated quote: the quoted field opened on "
      .. "line 2 runs on to a stray quote on line 4; the record is cut at the end of line 2 "
      .. "and reading resumes on line 3$"), out[1].why)
    assert.are.same({ "2", "two" }, out[2].row)
    assert.are.same({ "3", "x, y" }, out[3].row)
    assert.are.same({ "4", "four" }, out[4].row)
    assert.are.equal(5, lines)
  end)

  it("the same with CRLF line ends and ';'", function()
    local out = read('a;b\r\n1;"Bob\r\n2;two\r\n3;"x; y"\r\n4;four')
    assert.are.same({ "1", "Bob" }, out[1].bad)
    assert.are.same({ "2", "two" }, out[2].row)
    assert.are.equal(3, out[2].line)
    assert.are.same({ "3", "x; y" }, out[3].row)
    assert.are.same({ "4", "four" }, out[4].row)
  end)

  it("a quoted field over several lines that closes well is still one field", function()
    local out = read('a,b\n1,"two\nlines"\n2,"x"\n')
    assert.are.same({ "1", "two\nlines" }, out[1].row)
    assert.are.same({ "2", "x" }, out[2].row)
    assert.are.equal(4, out[2].line)
  end)

  it("a record over the limit that ends is one bad record, its fields cut", function()
    local out, lines = read('a,b\n1,"' .. string.rep("x", 30) .. '"\n2,3\n', { max_record = 10 })
    assert.are.equal(2, #out)
    assert.are.equal("line 2: record longer than 10 bytes (35 bytes, lines 2-2): only its "
      .. "first 10 bytes are kept", out[1].why)
    assert.are.same({ "1", "xxxxxxx" }, out[1].bad)
    assert.are.same({ "2", "3" }, out[2].row)
    assert.are.equal(3, lines)
  end)

  it("a field over 4 MiB that closes costs one record, not the rest of the file", function()
    local big = string.rep("y", 5 * 1024 * 1024)
    local out = read('a,b\n1,"' .. big .. '\n' .. big .. '"\n2,3\n4,5\n')
    assert.are.equal(3, #out)
    assert.truthy(out[1].why:find("^line 2: record longer than 4194304 bytes %(10485766 bytes, "
      .. "lines 2%-3%)"), out[1].why)
    assert.truthy(#out[1].bad[2] <= 4 * 1024 * 1024)
    assert.are.same({ "2", "3" }, out[2].row)
    assert.are.equal(4, out[2].line)
    assert.are.same({ "4", "5" }, out[3].row)
  end)

  it("a runaway quote over the limit goes back to the line after the quote", function()
    local out = read('a,b\n1,"abc\n' .. string.rep("z", 40) .. '\n2,3\n', { max_record = 10 })
    assert.are.same({ "1", "abc" }, out[1].bad)
    assert.truthy(out[1].why:find("unterminated quote", 1, true), out[1].why)
    assert.truthy(out[2].why:find("^line 3: record longer than 10 bytes"), out[2].why)
    assert.are.same({ "2", "3" }, out[3].row)
    assert.are.equal(4, out[3].line)
  end)

  it("a quote opened on the last line, with no line end after it, is a plain bad record", function()
    local out, lines = read('a,b\n1,2\n3,"never')
    assert.are.equal(2, #out)
    assert.are.equal("line 3: unterminated quote (the file ends inside a quoted field)", out[2].why)
    assert.are.equal(3, lines)
  end)

  it("lines() counts the header, every row's lines and the blank lines", function()
    local out, lines, blank = read('a,b\n\n1,"x\ny"\n\r\n\n2,3')
    assert.are.equal(2, #out)
    assert.are.equal(3, out[1].line)
    assert.are.equal(7, out[2].line)
    assert.are.equal(7, lines)
    assert.are.equal(3, blank)
  end)

  it("a runaway quote in a pipe: the record, then nil, err naming the line", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir .. " && mkfifo " .. dir .. "/p"))
    assert(os.execute("(printf 'a,b\\n1,2\\n3,\"x\\n4,5\\n' > " .. dir .. "/p) &"))
    local r = assert(core.csv_open(dir .. "/p"))
    assert(r:header())
    assert.are.same({ "1", "2" }, (r:next()))
    local row, why, line, bad = r:next()
    assert.are.equal(false, row)
    assert.are.equal(3, line)
    assert.are.same({ "3", "x" }, bad)
    assert.truthy(why:find("reading cannot go back to line 4", 1, true), why)
    for _ = 1, 2 do
      local none, err = r:next()
      assert.is_nil(none)
      assert.truthy(err:find("^line 4: reading stops: the input cannot be read again from line 4, "
        .. "after the runaway quote of line 3"), err)
    end
    r:close()
    os.execute("rm -rf " .. dir)
  end)

  it("max_record must be a whole number of bytes up to 4 MiB (a programming error)", function()
    local path = file("a\n")
    for _, bad in ipairs { 0, -1, 1.5, 4 * 1024 * 1024 + 1, "x" } do
      assert.has_error(function() core.csv_open(path, { max_record = bad }) end)
    end
    assert.truthy(core.csv_open(path, { max_record = 1 }))
    os.remove(path)
  end)
end)
