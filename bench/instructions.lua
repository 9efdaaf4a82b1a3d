--- Instruction counts under valgrind's callgrind (issue 26): exact and repeatable where
-- wall-clock rates swing 2 x on a shared machine.  A unit's count is the difference of two
-- runs of different lengths over the difference of their lengths: start-up, warm-up and
-- the last write cancel out.  Used by bench/driver.lua (scenario 11) and
-- scripts/check-instructions (the budgets of make test, bench/budgets.txt).
local M = {}

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- The instructions (Ir) of one run of cmd (a shell command whose program callgrind runs:
-- cmd(prefix) returns the command with prefix before the program), or raises.
local function count(cmd, out)
  os.remove(out)
  local p = assert(io.popen(cmd("valgrind --tool=callgrind --callgrind-out-file=" .. sh_quote(out) .. " ")
    .. " >/dev/null 2>" .. sh_quote(out .. ".err")))
  p:read("a")
  local ok = p:close()
  local f = io.open(out)
  local text = f and f:read("a") or ""
  if f then f:close() end
  local ir = tonumber(text:match("\nsummary: (%d+)") or text:match("\ntotals: (%d+)") or "")
  if not ok or not ir then
    local e = io.open(out .. ".err")
    local err = e and e:read("a") or ""
    if e then e:close() end
    error("instructions: the run failed: " .. cmd("valgrind ") .. "\n" .. err:sub(-2000), 0)
  end
  os.remove(out)
  os.remove(out .. ".err")
  return ir
end

--- Instructions per unit: cmd(n, prefix) is the command of a run of n units, with prefix
-- before its program; n1 < n2.  out: a scratch file.
function M.per_unit(cmd, n1, n2, out)
  local a = count(function(prefix) return cmd(n1, prefix) end, out)
  local b = count(function(prefix) return cmd(n2, prefix) end, out)
  return (b - a) / (n2 - n1)
end

--- The budgets file: { name = instructions }, the names in file order, and the first
-- line that is neither a comment, blank, nor `name instructions` (nil when none).
function M.budgets(path)
  local t, order, bad = {}, {}, nil
  for line in io.lines(path) do
    local name, value = line:match("^([%w_]+)%s+(%d+)%s*$")
    if name then
      t[name] = tonumber(value)
      order[#order + 1] = name
    elseif not line:match("^%s*#") and not line:match("^%s*$") then
      bad = bad or line
    end
  end
  return t, order, bad
end

return M
