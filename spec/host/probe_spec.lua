-- `dialoginsight probe` against the sandbox, as a user runs it: the table,
-- the exit status, what --writes adds (nothing created or sent), and the
-- fixtures --record writes, replayed through the library with a transport
-- that serves them.
local sbx = require "support.sandbox"
local H = require "support.host"
local cjson = require "cjson"

local function row(out, name)
  for line in out:gmatch("[^\n]+") do
    if line:match("^" .. name:gsub("%.", "%%.") .. "%s") then return line end
  end
end

describe("dialoginsight probe", function()
  before_each(function() sbx.reset() end)

  it("prints every method with its evidence and result, and exits 0 when every seen method exists", function()
    local r = H.run("probe")
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("method%s+evidence%s+result%s+HTTP%s+ms%s+paging"), r.out)
    assert.truthy(row(r.out, "contacts.Get"):find("seen%s+exists%s+200.*honoured"), r.out)
    assert.truthy(row(r.out, "segments.List"):find("assumed%s+exists"), r.out)
    assert.truthy(row(r.out, "sendings.SendSingle2"):find("not probed"), r.out)
    assert.truthy(row(r.out, "messages.Get"):find("refused: InvalidParameter"), r.out)
  end)

  it("with --writes, probes writes without creating, sending or deleting anything", function()
    local before = sbx.control("GET", "state")
    local mark = sbx.mark()
    local r = H.run("probe --writes")
    assert.equal(0, r.code, r.err)
    assert.truthy(row(r.out, "contacts.Merge"):find("exists"), r.out)
    assert.truthy(row(r.out, "sendings.SendSingle2"):find("refused"), r.out)
    local after = sbx.control("GET", "state")
    assert.same(before.projects, after.projects, "the probe changed the sandbox's projects")
    assert.same(before.tables, after.tables, "the probe changed the sandbox's relational tables")
    local sends = 0
    for _, e in ipairs(sbx.log(mark)) do
      if e.service == "sendings" and e.success then sends = sends + 1 end
    end
    assert.equal(0, sends)
  end)

  it("records each exchange with the key redacted and the Trace kept, and the fixtures replay", function()
    local dir = H.TMP .. "/probe-fixtures"
    os.execute("rm -rf " .. H.q(dir) .. " && mkdir -p " .. H.q(dir))
    local r = H.run("probe --writes --record " .. H.q(dir))
    assert.equal(0, r.code, r.err)
    local key = sbx.env("DI_KEY")
    local n = 0
    for name in io.popen("ls " .. H.q(dir)):lines() do
      n = n + 1
      local text = H.slurp(dir .. "/" .. name)
      assert.is_nil(text:find(key, 1, true), name .. " holds the key")
      local fx = cjson.decode(text)
      assert.equal(name:gsub("%.json$", ""), fx.method)
      assert.equal("<redacted>", fx.request.AuthKey.Key)
      if fx.reply.status == 200 then assert.truthy(fx.reply.body:find('"Trace"', 1, true), name) end
    end
    assert.equal(23, n)
    -- replay: the library, fed the recorded reply, reads what the probe read
    local out = H.run("run " .. H.q(H.ROOT .. "/spec/support/replay.lua") .. " " .. H.q(dir))
    assert.equal(0, out.code, out.out .. out.err)
    assert.truthy(out.out:find("replayed 23", 1, true), out.out)
  end)
end)
