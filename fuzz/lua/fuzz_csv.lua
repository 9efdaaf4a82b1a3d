-- fuzz_csv driver: bytes -> a CSV file -> core.csv_open, every row to the
-- end; then the accepted rows (header and the rows it took) written back
-- with the host's writer (cli/csv.lua), in the file's own separator as the
-- rejects file is, and read again: the same rows, none refused.
--
-- Every line is accounted for (issue 13): records start on strictly
-- increasing lines, even when the reader goes back after a runaway quote,
-- and r:lines() at the end is the file's own count of lines.  The file is
-- read a second time with a 16-byte record limit, so that the paths of a
-- record over the limit (and a runaway quote over it) are fuzzed too.
--
-- The reader's mark (the journal's proof of what was read, cli/sync/
-- journal.lua) never goes back, and at the end covers every byte once, in
-- order, whatever the seeks back: its hash is the file's, and digest() of
-- the same bytes says the same.
local core = require "dialoginsight.core"
local csv = require "dialoginsight.cli.csv"

local function fail(fmt, ...)
  error("fuzz_csv: " .. string.format(fmt, ...), 0)
end

-- The lines of bytes, counted as the reader counts them: CRLF, CR or LF
-- ends one, and a last line without an end counts.
local function count_lines(bytes)
  local n = select(2, bytes:gsub("\r\n", "\n"):gsub("[\r\n]", ""))
  local last = bytes:sub(-1)
  if #bytes > 0 and last ~= "\n" and last ~= "\r" then n = n + 1 end
  return n
end

-- FNV-1a, 64 bits, as src/di_csv.c (Lua 5.4 integers wrap alike).
local function fnv(s)
  local h = -3750763034362895579 -- 14695981039346656037 as a signed integer
  for i = 1, #s do h = (h ~ s:byte(i)) * 1099511628211 end
  return string.format("%016x", h)
end

-- Reads the whole file; returns header (or nil, why), accepted rows, count
-- of refused ones.  Each record starts on a later line than the one before,
-- so more records than bytes means the reader is looping.
local function read_all(bytes, opts)
  local path, fd = fuzz_memfd(bytes)
  local r, oerr = core.csv_open(path, opts)
  if not r then fuzz_closefd(fd); fail("csv_open: %s", tostring(oerr)) end
  local header, herr = r:header()
  if header == nil and type(herr) ~= "string" then fail("header() gave nil without a reason") end
  local rows, refused, n, prev = {}, 0, 0, 0
  local limit, marked = #bytes + 2, 0
  while true do
    local row, a, line, bad = r:next()
    local off = r:mark()
    if off < marked or off > #bytes then fail("mark() %d after %d, of %d bytes", off, marked, #bytes) end
    marked = off
    if row == nil then
      if a ~= nil then fail("a memfd gave nil, %s", tostring(a)) end
      break
    end
    n = n + 1
    if n > limit then fail("%d records from %d bytes: the reader loops", n, #bytes) end
    if row == false then
      if type(a) ~= "string" or math.type(line) ~= "integer" or type(bad) ~= "table" then
        fail("a refused record without why/line/row")
      end
      refused = refused + 1
    else
      if type(row) ~= "table" or math.type(a) ~= "integer" or a < 1 then fail("bad row/line") end
      line = a
      for i = 1, #row do
        if type(row[i]) ~= "string" then fail("field %d is a %s", i, type(row[i])) end
      end
      if header and #row ~= #header then fail("accepted a row of %d fields, header has %d", #row, #header) end
      rows[#rows + 1] = row
    end
    if line <= prev then fail("a record on line %d after one on line %d", line, prev) end
    prev = line
  end
  if r:next() ~= nil then fail("next() after the end returned a row") end
  if header then
    local lines = r:lines()
    if lines ~= count_lines(bytes) then
      fail("lines() says %d, the file has %d", lines, count_lines(bytes))
    end
    if prev > lines then fail("a record on line %d of %d", prev, lines) end
  end
  local off, hash = r:mark()
  if header and off ~= #bytes then fail("mark() covers %d of %d bytes at the end", off, #bytes) end
  if hash ~= fnv(bytes:sub(1, off)) then fail("mark()'s hash is not that of the first %d bytes", off) end
  if r:digest(off) ~= hash then fail("digest(%d) differs from mark()", off) end
  local tell, sep = r:tell(), r:separator()
  if tell > #bytes then fail("tell() %d past the end %d", tell, #bytes) end
  r:close()
  fuzz_closefd(fd)
  return header, herr, rows, refused, sep
end

local function same(a, b, what)
  if #a ~= #b then fail("%s: %d fields, wrote %d", what, #a, #b) end
  for i = 1, #a do
    if a[i] ~= b[i] then fail("%s: field %d is %q, wrote %q", what, i, a[i], b[i]) end
  end
end

return function(bytes)
  read_all(bytes, { max_record = 16 })
  local header, _, rows, _, sep = read_all(bytes)
  if not header then return end
  local out = { csv.line(header, sep) }
  for i, row in ipairs(rows) do out[i + 1] = csv.line(row, sep) end
  local header2, herr2, rows2, refused2, sep2 = read_all(table.concat(out))
  if not header2 then fail("written header does not read back: %s", tostring(herr2)) end
  if sep2 ~= sep and #header > 1 then fail("written file reads with separator %q, wrote %q", sep2, sep) end
  same(header2, header, "header")
  if refused2 ~= 0 then fail("%d written rows refused on reading back", refused2) end
  if #rows2 ~= #rows then fail("%d rows read back, wrote %d", #rows2, #rows) end
  for i = 1, #rows do same(rows2[i], rows[i], "row " .. i) end
end
