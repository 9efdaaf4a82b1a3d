-- The CSV reader's I/O errors (src/di_csv.c): a read that fails is the
-- `nil, err` of r:header() and r:next(), not a raise, so that a sync job can
-- report it for the file and stop cleanly (cli/sync.lua checks the second
-- value of a nil row).
--
-- A read that fails for any user on Linux: /proc/self/mem opens, but reading
-- it at offset 0 (an address never mapped, below vm.mmap_min_addr) gives
-- EIO.  The reader's first read is at offset 0.
local core = require "dialoginsight.core"

local MEM = "/proc/self/mem"

-- The platform's word for EIO, as the reader must report it.
local function eio()
  local f = assert(io.open(MEM, "rb"))
  local data, err = f:read(16)
  f:close()
  assert(data == nil and err, MEM .. " was expected to fail on read at offset 0")
  return err
end

describe("CSV reader I/O errors (core.csv_open)", function()
  it("r:header() returns nil, 'line 1: read error: ...' when the read fails", function()
    local want = "line 1: read error: " .. eio()
    local r = assert(core.csv_open(MEM))
    local ok, h, err = pcall(r.header, r)
    assert.is_true(ok, "header() raised: " .. tostring(h))
    assert.is_nil(h)
    assert.are.equal(want, err)
    r:close()
  end)

  it("r:next() returns nil, 'line 1: read error: ...' when the read fails", function()
    local want = "line 1: read error: " .. eio()
    local r = assert(core.csv_open(MEM))
    local ok, row, err = pcall(r.next, r)
    assert.is_true(ok, "next() raised: " .. tostring(row))
    assert.is_nil(row)
    assert.are.equal(want, err)
    r:close()
  end)

  it("the error sticks: next() after it reports it again, never a row", function()
    local want = "line 1: read error: " .. eio()
    local r = assert(core.csv_open(MEM))
    for _ = 1, 3 do
      local ok, row, err = pcall(r.next, r)
      assert.is_true(ok, "next() raised: " .. tostring(row))
      assert.is_nil(row)
      assert.are.equal(want, err)
    end
    assert.are.equal(0, r:tell())
    r:close()
  end)

  it("the end of a readable file is still a bare nil", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write("a,b\n1,2\n")
    f:close()
    local r = assert(core.csv_open(path))
    os.remove(path)
    assert.are.same({ "a", "b" }, r:header())
    assert.are.same({ "1", "2" }, (r:next()))
    local n = select("#", r:next())
    assert.are.equal(1, n)
    assert.is_nil((r:next()))
    r:close()
  end)
end)

describe("di.csv (the reader, public)", function()
  it("reads quotes, separators and lines inside quotes, as the sync does", function()
    local di = require "dialoginsight"
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write('\239\187\191EMail;Note\r\nann@example.com;"a; ""b""\r\nc"\r\nbob@example.com;\r\n')
    f:close()
    local r = assert(di.csv(path))
    assert.same({ "EMail", "Note" }, r:header())
    local row, line = r:next()
    assert.same({ "ann@example.com", 'a; "b"\r\nc' }, row)
    assert.equal(2, line)
    row, line = r:next()
    assert.same({ "bob@example.com", "" }, row)
    assert.equal(4, line)
    assert.is_nil(r:next())
    r:close()
    os.remove(path)
    local none, err = di.csv(path)
    assert.is_nil(none)
    assert.truthy(err:find(path, 1, true))
  end)
end)
