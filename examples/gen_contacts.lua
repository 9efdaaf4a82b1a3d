-- gen_contacts.lua ROWS [BAD_EVERY] > contacts.csv
-- Writes a CSV of ROWS generated contacts for `dialoginsight sync contacts`
-- (make demo, the host's specs).  With BAD_EVERY = N, every Nth row is bad
-- on purpose, in turn: an integer field that is not a number, an impossible
-- date, a missing key, a text over 100 characters.  Deterministic: the same
-- arguments always give the same file.  Runs under lua5.4 or the host.
local rows = tonumber(arg[1]) or error("usage: gen_contacts.lua ROWS [BAD_EVERY]")
local bad_every = tonumber(arg[2] or "0")
local CITIES = { "Montréal", "Québec", "Paris", "Lyon", "Toronto", "Gatineau", "Sherbrooke" }
local FIRST = { "Ann", "Bob", "Chloé", "Dmitri", "Émile", "Fatou", "Gus", "Hana" }
local out = io.stdout
out:write("EMail,FirstName,LastName,City,BirthDate,Points,Newsletter\n")
local buf, nbad = {}, 0
for i = 1, rows do
  local email = string.format("user%07d@example.com", i)
  local first, last = FIRST[i % #FIRST + 1], "Doe-" .. i
  local city = CITIES[i % #CITIES + 1]
  local birth = string.format("%04d-%02d-%02d", 1950 + i % 50, i % 12 + 1, i % 28 + 1)
  local points, nl = tostring(i % 1000), i % 3 == 0 and "0" or "1"
  if bad_every > 0 and i % bad_every == 0 then
    nbad = nbad + 1
    local kind = nbad % 4
    if kind == 1 then points = "lots"
    elseif kind == 2 then birth = "1990-02-30"
    elseif kind == 3 then email = ""
    else last = string.rep("x", 101) end
  end
  if i % 10 == 5 then first = '"' .. first .. ', Jr."' end -- a quoted field with a comma
  buf[#buf + 1] = table.concat({ email, first, last, city, birth, points, nl }, ",")
  if #buf == 1000 then out:write(table.concat(buf, "\n"), "\n"); buf = {} end
end
if #buf > 0 then out:write(table.concat(buf, "\n"), "\n") end
