-- docs/wire.md and the registry agree: every method of the registry has a
-- row in the table of docs/wire.md with the same wire name, evidence,
-- idempotency, paging and result, and no row names a method the registry
-- lacks.  And the code cites docs/, never a file outside the repository.
local registry = require "dialoginsight.registry"

local function read(path)
  local f = assert(io.open(path, "rb"), path)
  local s = f:read("*a")
  f:close()
  return s
end

local function strip(cell)
  return (cell:gsub("%[assumed%]", ""):gsub("`", ""):gsub("^%s+", ""):gsub("%s+$", ""))
end

-- The rows of the table that follows the registry marker: name -> row.
local function rows()
  local text = read("docs/wire.md")
  local start = assert(text:find("<!-- registry", 1, true), "docs/wire.md has no registry marker")
  local list = {}
  for line in text:sub(start):gmatch("[^\n]+") do
    if list.started and not line:match("^|") then break end
    if line:match("^| `") then
      list.started = true
      local cells = {}
      for cell in line:gmatch("|([^|]*)") do cells[#cells + 1] = strip(cell) end
      list[cells[1]] = { wire = cells[2], evidence = cells[3], idempotent = cells[5],
                         paging = cells[6], result = cells[7] }
    end
  end
  list.started = nil
  return list
end

describe("docs/wire.md", function()
  it("lists every registry method as the registry has it, and no other", function()
    local doc, seen = rows(), {}
    for entry in registry.default:each() do
      local row = doc[entry.name]
      assert.is_table(row, entry.name .. " has no row in docs/wire.md")
      seen[entry.name] = true
      assert.equal(entry.service .. ".ashx?method=" .. entry.method, row.wire, entry.name)
      assert.equal(entry.wire, row.evidence, entry.name .. ": evidence")
      assert.equal(entry.idempotent and "yes" or "no", row.idempotent, entry.name .. ": idempotent")
      local paging = type(entry.paging) == "string" and entry.paging or "—"
      assert.equal(paging, row.paging, entry.name .. ": paging")
      assert.equal(entry.result, row.result, entry.name .. ": result")
    end
    for name in pairs(doc) do
      assert.is_true(seen[name] == true, name .. " is in docs/wire.md but not in the registry")
    end
  end)

  it("is what the code, the sandbox, the specs, the examples and the scripts cite: none names a file "
     .. "outside the repository", function()
    -- the shared reference and design notes, named here only as a pattern,
    -- so that this file passes its own check; a ../shared/ path is caught too
    local p = assert(io.popen("grep -rlE '(^|[^[:alnum:]_])(API|DESIGN)\\.md' lua src sandbox spec examples "
      .. "scripts 2>/dev/null"))
    local out = p:read("*a")
    p:close()
    assert.equal("", out, "these cite the reference or design notes kept outside the repository "
      .. "(cite docs/wire.md instead):\n" .. out)
  end)
end)
