--- The column plan of a sync: what each CSV column holds, resolved once for
-- the whole file into the record builder's steps (records/record.lua).
local commands = require "dialoginsight.cli.commands"

local M = {}

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

-- The field a column is read as: map[COL] when given ("" or "-" skips it),
-- nothing for a rejects file's own di_* columns, else the column's name.
local function target_of(col, map)
  local target = map[col]
  if target == nil and col:match("^di_") then target = "" end
  if target == nil then target = col end
  if target == "" or target == "-" then return nil end
  return target
end

--- The steps of the header's columns (false for a skipped one) through
-- builder (record.contacts), with map (COL -> FIELD, "" to skip); or nil
-- and the list of problems (unknown names, two columns for one field, no
-- column for the key).
function M.columns(header, map, builder)
  local steps, problems, seen = {}, {}, {}
  local has_key = false
  for j, raw in ipairs(header) do
    local col = trim(raw)
    local target = target_of(col, map)
    local s = false
    if target then
      local optin = target:match("^optin[._](.+)$")
      s = optin and builder:optin_step(optin) or builder:step(target)
      if s.fixed then
        problems[#problems + 1] = "column " .. j .. " " .. commands.quote(col) .. " " .. s.fixed
        s = false
      else
        local id = (s.wire or "idContact"):lower()
        if seen[id] then
          problems[#problems + 1] = "columns " .. seen[id] .. " and " .. j .. " both map to "
            .. (s.name or s.field)
        end
        seen[id] = j
        has_key = has_key or s.key or s.id or s.raw or false
      end
    end
    steps[j] = s
  end
  if not has_key then
    problems[#problems + 1] = "no column holds the key field '" .. builder.key_name
      .. "' (or idContact); use --map COLUMN=" .. builder.key_name .. " or --key-field FIELD"
  end
  if #problems > 0 then return nil, problems end
  return steps
end

return M
