-- The host's commands against the sandbox's modes for the open questions
-- (sandbox/README.md, "Modes for the open questions"): `sync` when the
-- server names Merge statuses otherwise, `export` whatever the server does
-- with paging.  (probe: probe_spec.lua; the library: spec/client/resources/
-- modes_spec.lua.)  Checks go through the sandbox's control API.
local sbx = require "support.sandbox"
local H = require "support.host"

local q, run = H.q, H.run

describe("sync in the sandbox's Merge status modes", function()
  for _, statuses in ipairs {
    { Created = "Inserted", Updated = "Merged" },
    { Created = "Updated" },
  } do
    local label = statuses.Updated and "Inserted and Merged" or "Updated for a creation too"
    it("counts every good row merged when the statuses are " .. label, function()
      sbx.reset()
      sbx.control("POST", "config", { merge_statuses = statuses })
      local dir = H.TMP .. "/modes-sync"
      os.execute("rm -rf " .. q(dir) .. " && mkdir -p " .. q(dir))
      local csv = dir .. "/c.csv"
      H.spit(csv, "EMail,FirstName,Points\nann@example.com,Ann,1\nnew1@example.com,New,2\n"
        .. "new2@example.com,Newer,3\nbad@example.com,Bad,lots\n")
      local r = run("sync contacts " .. q(csv))
      assert.are.equal(2, r.code, r.out .. r.err) -- the one bad row
      assert.truthy(r.out:find("3 merged", 1, true), r.out)
      assert.truthy(r.out:find("1 rejected", 1, true), r.out)
      local stored = sbx.control("GET", "state?contacts=1").contacts
      assert.are.same({ "Ann", "New", "Newer" },
        { stored["ann@example.com"].f_FirstName, stored["new1@example.com"].f_FirstName,
          stored["new2@example.com"].f_FirstName })
      local rejects = H.slurp(csv .. ".rejects.csv")
      assert.truthy(rejects:find("bad@example.com", 1, true))
      assert.is_nil(rejects:find("new1@example.com", 1, true), rejects)
    end)
  end
end)

describe("export in the sandbox's paging modes", function()
  after_each(function() sbx.reset() end)

  for _, mode in ipairs {
    { paging = "ignored" }, { paging = "ignored", total_records = false },
    { paging = "fixed", page_size = 7 }, { total_records = false },
    { contacts_order = "email", total_records = "page" },
    { contacts_order = "descending", paging = "fixed", page_size = 7, total_records = "page" },
    { contacts_order = "email", paging = "ignored", total_records = false },
  } do
    local label = (mode.paging or "honoured") .. (mode.page_size and (" " .. mode.page_size) or "")
      .. (mode.total_records == false and ", no TotalRecords" or "")
      .. (mode.total_records == "page" and ", TotalRecords the page's count" or "")
      .. (mode.contacts_order and (", ordered by " .. mode.contacts_order) or "")
    it("writes every contact once when paging is " .. label, function()
      sbx.reset { contacts = 150 }
      sbx.control("POST", "config", mode)
      local r = run("export contacts")
      assert.are.equal(0, r.code, r.err)
      local seen, n = {}, 0
      for line in r.out:gmatch("[^\n]+") do
        local id = line:match("^(%d+),")
        if id then
          assert.is_nil(seen[id], "idContact " .. id .. " written twice")
          seen[id], n = true, n + 1
        end
      end
      assert.are.equal(162, n)
    end)
  end

  it("exits 1 with the file incomplete, no contact twice, when the clause is ignored", function()
    sbx.reset { contacts = 150 }
    sbx.control("POST", "config", { clause = "ignored", contacts_order = "email" })
    local r = run("export contacts --where City=Paris --page-size 40")
    assert.are.equal(1, r.code, r.err)
    local seen = {}
    for id in r.out:gmatch("\n(%d+),") do
      assert.is_nil(seen[id], "idContact " .. id .. " written twice")
      seen[id] = true
    end
    assert.truthy(r.err:find("the file is incomplete", 1, true), r.err)
  end)
end)
