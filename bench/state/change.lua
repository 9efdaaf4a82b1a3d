-- change.lua IN OUT EVERY — scenario 9's changed file: a copy of IN (a CSV made by
-- examples/gen_contacts.lua) where every EVERYth row (rows counted from 1 after the
-- header) has its Points (the next-to-last field, never quoted) one higher, modulo 1,000
-- as gen_contacts makes them, so its wire record differs from the state's. Prints
-- "changed=N". Deterministic: the same arguments always give the same file.
local inp, outp, every = arg[1], arg[2], tonumber(arg[3])
assert(inp and outp and every and every >= 1, "usage: change.lua IN OUT EVERY")
local out = assert(io.open(outp, "wb"))
local i, n, buf = -1, 0, {}
for line in io.lines(inp) do
  i = i + 1
  if i > 0 and i % every == 0 then
    local head, points, last = line:match("^(.*),(%d+),([^,]*)$")
    assert(head, "change.lua: line " .. (i + 1) .. " does not end with Points and Newsletter")
    line = head .. "," .. ((tonumber(points) + 1) % 1000) .. "," .. last
    n = n + 1
  end
  buf[#buf + 1] = line
  if #buf == 1000 then out:write(table.concat(buf, "\n"), "\n"); buf = {} end
end
if #buf > 0 then out:write(table.concat(buf, "\n"), "\n") end
assert(out:close())
io.write("changed=", n, "\n")
