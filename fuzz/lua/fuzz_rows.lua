-- fuzz_rows driver: byte 1 picks the column plan, the rest is a CSV file,
-- read through the C column plan and through the Lua record builder side by
-- side (fuzz/lua/rows_check.lua says what must agree).  Column j takes kind
-- KINDS[(j + pick) % #KINDS + 1], one idContact column at most, and the key
-- is column pick % n + 1 (as Text, when its kind holds no data).
local rows_check = require "rows_check"

local KINDS = rows_check.KINDS

return function(bytes)
  if #bytes < 1 then return end
  local pick, text = bytes:byte(1), bytes:sub(2)
  local path, fd = fuzz_memfd(text)
  local r = assert(require("dialoginsight.core").csv_open(path))
  local header = r:header()
  r:close()
  if header then
    local n, kinds, has_id = #header, {}, false
    local keycol = pick % n + 1
    for j = 1, n do
      local kind = KINDS[(j + pick) % #KINDS + 1]
      if kind == "id" and has_id then kind = "any" end
      if j == keycol and (kind == "id" or kind == "raw" or kind == "skip") then kind = "Text" end
      has_id = has_id or kind == "id"
      kinds[j] = kind
    end
    rows_check.check(path, kinds, keycol, #text + 2)
  end
  fuzz_closefd(fd)
end
