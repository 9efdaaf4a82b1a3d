--- Test support: an RFC 4180 reader written independently of the host's
-- (src/di_csv.c), to check what the host writes (rejects files) without
-- trusting the code under test.
local M = {}

--- The records of s, each a list of fields.  Raises on an unterminated
-- quote: what the host writes must never hold one.
function M.parse(s)
  local recs, rec, field, i, n = {}, {}, {}, 1, #s
  local function endfield() rec[#rec + 1] = table.concat(field); field = {} end
  while i <= n do
    local c = s:sub(i, i)
    if c == '"' and #field == 0 then
      local j = i + 1
      while true do
        local k = s:find('"', j, true)
        if not k then error("unterminated quote") end
        field[#field + 1] = s:sub(j, k - 1)
        if s:sub(k + 1, k + 1) == '"' then field[#field + 1] = '"'; j = k + 2
        else i = k + 1; break end
      end
    elseif c == "," then endfield(); i = i + 1
    elseif c == "\r" or c == "\n" then
      endfield(); recs[#recs + 1] = rec; rec = {}
      i = i + ((c == "\r" and s:sub(i + 1, i + 1) == "\n") and 2 or 1)
    else
      local k = s:find('[,\r\n"]', i) or n + 1
      field[#field + 1] = s:sub(i, k - 1)
      i = k
    end
  end
  if #field > 0 or #rec > 0 then endfield(); recs[#recs + 1] = rec end
  return recs
end

return M
