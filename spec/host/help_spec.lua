-- The command's help on the environment comes from config.lua's schema
-- (issue 22): every DI_* variable of a setting is listed, with its
-- setting's description, and the API reference's `settings` fields are
-- written from the same entries (scripts/settings-doc).
local config = require "dialoginsight.config"
local H = require "support.host"
local q, spit, run = H.q, H.spit, H.run

describe("dialoginsight --help", function()
  it("lists every DI_* variable of config.lua's schema, with its description", function()
    local r = run("--help")
    assert.are.equal(0, r.code, r.err)
    local n = 0
    for _, def in ipairs(config.SETTINGS) do
      if def.env then
        n = n + 1
        local line = r.out:match("\n  (" .. def.env .. " [^\n]*)")
        assert.truthy(line, def.env .. " is not in --help:\n" .. r.out)
        local what = def.doc:match("^(.-); ") or def.doc
        assert.truthy(line:find(what, 1, true), def.env .. ": " .. line)
      end
    end
    assert.are.equal(19, n) -- (a schema that lost its env entries would pass vacuously)
  end)

  it("gives the API reference each setting's description from the schema (scripts/settings-doc)", function()
    local out = os.tmpname()
    local ok = os.execute(q(H.ROOT .. "/scripts/settings-doc") .. " " .. q(out))
    assert.is_true(ok == true or ok == 0)
    local text = H.slurp(out):gsub("\n%-%- ", " ")
    os.remove(out)
    for _, def in ipairs(config.SETTINGS) do
      local doc = def.doc .. (def.env and (" (" .. def.env .. ")") or "")
      assert.truthy(text:find("@field " .. def.name .. " " .. doc, 1, true), def.name)
    end
  end)

  it("suggests the closest setting for a misspelling in a config file", function()
    local path = os.tmpname()
    spit(path, "tiemout = 3\n")
    os.execute("chmod 600 " .. q(path))
    local r = run("--config " .. q(path) .. " check", { env = "env -u DI_KEY -u DI_KEY_ID " })
    os.remove(path)
    assert.are.equal(1, r.code)
    assert.truthy(r.err:find("unknown setting 'tiemout' (did you mean 'timeout'?)", 1, true), r.err)
  end)
end)
