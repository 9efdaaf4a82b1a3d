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

  it("never writes a fixture through a symbolic link, nor into a linked directory", function()
    local dir, victim = H.TMP .. "/probe-links", H.TMP .. "/probe-victim"
    os.execute("rm -rf " .. H.q(dir) .. " " .. H.q(dir .. "-link") .. " && mkdir -p " .. H.q(dir))
    H.spit(victim, "precious\n")
    -- a fixture's name planted as a link to a file of someone else's
    os.execute("ln -s " .. H.q(victim) .. " " .. H.q(dir .. "/contacts.Get.json"))
    local r = H.run("probe --record " .. H.q(dir))
    assert.equal(1, r.code, r.out .. r.err)
    assert.truthy(r.err:find("contacts.Get.json is a symbolic link", 1, true), r.err)
    assert.equal("precious\n", H.slurp(victim))
    -- the directory itself a link
    os.execute("rm -f " .. H.q(dir .. "/contacts.Get.json") .. " && ln -s " .. H.q(dir) .. " " .. H.q(dir .. "-link"))
    r = H.run("probe --record " .. H.q(dir .. "-link"))
    assert.equal(1, r.code, r.out .. r.err)
    assert.truthy(r.err:find("symbolic link", 1, true), r.err)
    -- a temporary name planted as a link is not followed either
    os.execute("ln -s " .. H.q(victim) .. " " .. H.q(dir .. "/contacts.Get.json.tmp"))
    r = H.run("probe --record " .. H.q(dir))
    assert.equal(0, r.code, r.out .. r.err)
    assert.equal("precious\n", H.slurp(victim))
    assert.is_false(H.slurp(dir .. "/contacts.Get.json") == nil)
  end)

  it("never calls a read whose wire name an override points at a writing method, nor sends it a clause that matches", function()
    -- (a hostile review: contacts.Get -> Delete deleted every contact of the sandbox)
    local file = H.TMP .. "/probe-reroute.json"
    H.spit(file, cjson.encode { ["contacts.Get"] = { method = "Delete", paging = false },
                                ["segments.GetContacts"] = { service = "Contacts", method = "merge" } })
    local before = sbx.control("GET", "state").projects["1001"].contacts
    local mark = sbx.mark()
    local r = H.run("probe", { env = "DI_METHODS_FILE=" .. H.q(file) .. " " })
    assert.truthy(row(r.out, "contacts.Get"):find("not probed", 1, true), r.out)
    assert.truthy(row(r.out, "segments.GetContacts"):find("not probed", 1, true), r.out)
    for _, e in ipairs(sbx.log(mark)) do
      local m = tostring(e.method):lower()
      assert.is_true(m ~= "delete" and m ~= "merge", "probe called " .. tostring(e.service) .. "." .. m)
    end
    assert.same(before, sbx.control("GET", "state").projects["1001"].contacts)
    -- a read renamed to a name of no known method is probed, with a clause no contact matches
    H.spit(file, cjson.encode { ["contacts.Get"] = { method = "Purge" } })
    local dir = H.TMP .. "/probe-renamed"
    os.execute("rm -rf " .. H.q(dir) .. " && mkdir -p " .. H.q(dir))
    H.run("probe --record " .. H.q(dir), { env = "DI_METHODS_FILE=" .. H.q(file) .. " " })
    local fx = cjson.decode(H.slurp(dir .. "/contacts.Get.json"))
    assert.truthy(fx.url:find("method=Purge", 1, true), fx.url)
    assert.equal("f_dialoginsight_probe_none", fx.request.Clause.Field.Name)
  end)

  it("refuses --record through a directory link spelled LINK/. or LINK/x/..", function()
    local victim, link = H.TMP .. "/probe-victim-dir", H.TMP .. "/probe-link-dir"
    os.execute("rm -rf " .. H.q(victim) .. " " .. H.q(link) .. " && mkdir -p " .. H.q(victim .. "/x")
      .. " && ln -s " .. H.q(victim) .. " " .. H.q(link))
    H.spit(victim .. "/contacts.Get.json", "precious\n")
    for _, spelled in ipairs { link, link .. "/.", link .. "/x/..", link .. "/./" } do
      local r = H.run("probe --record " .. H.q(spelled))
      assert.equal(1, r.code, spelled .. ": " .. r.out .. r.err)
    end
    assert.equal("precious\n", H.slurp(victim .. "/contacts.Get.json"))
  end)

  it("decides what writes from the method, not from its wire name: overrides never make it write", function()
    -- wire names that differ from the library's only in case, and a send
    -- made idempotent: without --writes none of them is called
    local file = H.TMP .. "/probe-methods.json"
    H.spit(file, cjson.encode {
      ["contacts.Delete"] = { method = "delete" }, ["contacts.Merge"] = { method = "MERGE" },
      ["relationaltables.Delete"] = { method = "remove" }, ["sendings.SendBatch"] = { idempotent = true },
      ["segments.Merge"] = { idempotent = true },
    })
    local mark = sbx.mark()
    local r = H.run("probe", { env = "DI_METHODS_FILE=" .. H.q(file) .. " " })
    for _, name in ipairs { "contacts.Delete", "contacts.Merge", "relationaltables.Delete", "sendings.SendBatch",
                            "segments.Merge" } do
      assert.truthy(row(r.out, name):find("not probed", 1, true), name .. " was probed:\n" .. r.out)
    end
    for _, e in ipairs(sbx.log(mark)) do
      local m = tostring(e.method):lower()
      assert.is_nil(({ delete = 1, merge = 1, remove = 1, sendbatch = 1 })[m],
        "probe called " .. tostring(e.service) .. "." .. tostring(e.method) .. " without --writes")
    end
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
    -- the fixtures hold contact data: 0600, whatever the umask
    for name in io.popen("ls " .. H.q(dir)):lines() do
      assert.equal("600", io.popen("stat -c %a " .. H.q(dir .. "/" .. name)):read("l"), name)
    end
    -- replay: the library, fed the recorded reply, reads what the probe read
    local out = H.run("run " .. H.q(H.ROOT .. "/spec/support/replay.lua") .. " " .. H.q(dir))
    assert.equal(0, out.code, out.out .. out.err)
    assert.truthy(out.out:find("replayed 23", 1, true), out.out)
  end)
end)

-- The same probe in each of the sandbox's modes for the open questions
-- (sandbox/README.md, "Modes for the open questions"): what the table says
-- of paging, and the call limit in either form read as a limit.
describe("dialoginsight probe in the sandbox's modes", function()
  before_each(function() sbx.reset() end)

  for _, mode in ipairs {
    { "paging ignored", { paging = "ignored" }, "ignored %(12 rows%)", "ignored %(%d+ rows%)" },
    { "a fixed page of 5", { paging = "fixed", page_size = 5 }, "ignored %(5 rows%)", "ignored %(5 rows%)" },
    { "no TotalRecords", { total_records = false }, "honoured", "honoured" },
    { "the limit as an authentication error", { limit = "auth", limit_status = 401 }, "honoured", "honoured" },
    { "other Merge status names", { merge_statuses = { Created = "Inserted", Updated = "Merged" } },
      "honoured", "honoured" },
  } do
    it("runs with " .. mode[1] .. ", and says what paging did", function()
      sbx.control("POST", "config", mode[2])
      local r = H.run("probe --writes")
      assert.equal(0, r.code, r.out .. r.err)
      assert.truthy(row(r.out, "contacts.Get"):find("seen%s+exists%s+200%s.*" .. mode[3]), r.out)
      assert.truthy(row(r.out, "reports.GetOpens"):find("assumed%s+exists%s+200%s.*" .. mode[4]), r.out)
      assert.truthy(row(r.out, "contacts.Merge"):find("seen%s+exists"), r.out)
    end)
  end

  for _, style in ipairs {
    { "a 429", { limit = "429" } },
    { "the authentication error in HTTP 200", { limit = "auth", limit_status = 200 } },
    { "the authentication error in HTTP 401", { limit = "auth", limit_status = 401, limit_code = "InvalidAuthKey" } },
  } do
    it("reads the call limit as " .. style[1] .. " as limited, not as a refusal, and says so", function()
      sbx.control("POST", "config", style[2])
      sbx.control("POST", "ratelimit", { rate = 0.5, burst = 3 })
      local r = H.run("probe --writes")
      assert.equal(1, r.code, r.out .. r.err) -- contacts.Get [seen] met the limit: not shown to exist
      local limited = 0
      for line in r.out:gmatch("[^\n]+") do
        if line:find("limited (the call limit)", 1, true) then limited = limited + 1 end
      end
      assert.is_true(limited >= 10, limited .. " rows limited:\n" .. r.out)
      assert.is_nil(r.out:find("refused: InvalidAuthKey", 1, true), r.out)
      assert.truthy(r.out:find("met the key's call limit", 1, true), r.out)
    end)
  end
end)
