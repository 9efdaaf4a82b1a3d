-- scripts/check-c-calls (make lint): the file-level call graph of the C
-- core has no cycle; a unit below another never calls back up.
local function run(...)
  local args = {}
  for i, a in ipairs { ... } do args[i] = string.format("%q", a) end
  local p = io.popen("./scripts/check-c-calls " .. table.concat(args, " ") .. " 2>&1; echo \"rc=$?\"")
  local out = p:read("a")
  p:close()
  return tonumber(out:match("rc=(%d+)%s*$")), out
end

local function unit(dir, name, text)
  local path = dir .. "/" .. name
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

describe("check-c-calls", function()
  it("passes the core as it is", function()
    local rc, out = run()
    assert.equal(0, rc, out)
  end)

  it("fails on two units that call each other, naming the cycle and a symbol of each step", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local a = unit(dir, "di_a.c", "int di_b(int);\nint di_a(int x) { return x ? di_b(x - 1) : 0; }\n")
    local b = unit(dir, "di_b.c", "int di_a(int);\nint di_b(int x) { return di_a(x); }\n")
    local c = unit(dir, "di_c.c", "int di_a(int);\nint di_c(void) { return di_a(1); }\n")
    local rc, out = run(a, b, c)
    assert.equal(1, rc, out)
    assert.truthy(out:find("di_a.c -(di_b)-> " .. b, 1, true), out)
    assert.truthy(out:find("di_b.c -(di_a)-> " .. a, 1, true), out)
    -- a call downward only (c -> a -> nothing of c) is no cycle
    local b2 = unit(dir, "di_b.c", "int di_b(int x) { return x; }\n")
    rc, out = run(a, b2, c)
    assert.equal(0, rc, out)
    os.execute("rm -rf " .. dir)
  end)
end)
