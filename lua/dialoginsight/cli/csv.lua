--- CSV writing for the host (rejects files, export): RFC 4180, CRLF line ends; src/di_csv.c reads.
local M = {}

-- The reader (src/di_csv.c) guesses the separator, so ',' and ';' are quoted whatever sep
-- is; a leading BOM too, or the reader would drop it as the file's own.
local function needs_quotes(s, sep)
  return s:find('[",;\r\n]') or s:find(sep, 1, true) or s:match("^%s") or s:match("%s$")
    or s:sub(1, 3) == "\239\187\191"
end

function M.escape(v, sep)
  if v == nil then return "" end
  local s = tostring(v)
  if needs_quotes(s, sep or ",") then return '"' .. s:gsub('"', '""') .. '"' end
  return s
end

--- A whole line (with its CRLF) from a list of values.
function M.line(values, sep, n)
  sep = sep or ","
  local out = {}
  for i = 1, n or #values do out[i] = M.escape(values[i], sep) end
  return table.concat(out, sep) .. "\r\n"
end

return M
