-- `dialoginsight export contacts` as a user runs it, against the sandbox:
-- every contact that exists throughout is in the file once, whatever order
-- the pages come in, whatever TotalRecords says, also when others are
-- deleted during the export (by a second process, between two pages); a
-- server that ignores the clause ends it with exit 1, never a file with
-- repeats; numbers a double cannot hold are written as received.
local sbx = require "support.sandbox"
local H = require "support.host"
local q, slurp, run = H.q, H.slurp, H.run

-- Starts the host in the background; h.wait() -> exit status, stdout, stderr.
local function spawn(args, name)
  local base = H.TMP .. "/" .. name
  os.remove(base .. ".rc")
  os.execute(string.format("cd %s && ( %s%s %s > %s.out 2> %s.err; echo $? > %s.rc ) > /dev/null 2>&1 &",
    q(H.ROOT), H.ENV, H.BIN, args, base, base, base))
  local h = {}
  function h.wait(secs)
    for _ = 1, (secs or 60) * 10 do
      local rc = tonumber(slurp(base .. ".rc") or "")
      if rc then return rc, slurp(base .. ".out"), slurp(base .. ".err") end
      os.execute("sleep 0.1")
    end
    error("the export did not finish in time")
  end
  return h
end

-- The idContact of every data line, and how many times each appears.
local function ids_of(out)
  local times, lines = {}, 0
  for line in out:gmatch("([^\r\n]*)\r\n") do
    lines = lines + 1
    if lines > 1 then
      local id = assert(tonumber(line:match("^(%d+),")), "a line without an idContact: " .. line)
      times[id] = (times[id] or 0) + 1
    end
  end
  return times, lines - 1
end

local function assert_once(times, from, to, except)
  for id = from, to do
    if not (except and except(id)) then
      assert.are.equal(1, times[id], "contact " .. id .. " existed throughout and is in the file "
        .. (times[id] or 0) .. " times")
    end
  end
  for id, n in pairs(times) do assert.are.equal(1, n, "contact " .. id .. " written " .. n .. " times") end
end

-- Contacts.Get calls answered since mark, and started ones.
local function gets(mark)
  local started, answered = 0, 0
  for _, e in ipairs(sbx.log(mark)) do
    if e.service == "contacts" and e.method == "get" then
      started = started + 1
      if type(e.status) == "number" then answered = answered + 1 end
    end
  end
  return started, answered
end

-- Waits until the Get of page n has started (and so sleeps in its latency
-- fault), deletes the contacts lo..hi with the host as a second process,
-- and checks that page n was still unanswered: the deletion came between
-- page n - 1 and page n, or the spec would prove nothing.
local function delete_during_page(mark, n, lo, hi)
  for _ = 1, 300 do
    if gets(mark) >= n then break end
    os.execute("sleep 0.02")
  end
  assert(gets(mark) >= n, "page " .. n .. " was never asked for")
  local clause = string.format('{"Clause":{"$type":"ComboClause","Operator":"And","Clauses":['
    .. '{"$type":"FieldClause","Field":{"Name":"idContact"},"TypeOperator":"GreaterThan","ComparisonValue":%d},'
    .. '{"$type":"FieldClause","Field":{"Name":"idContact"},"TypeOperator":"LessThan","ComparisonValue":%d}]}}',
    lo - 1, hi + 1)
  local r = run("call contacts Delete " .. q(clause))
  assert.are.equal(0, r.code, r.err)
  assert.truthy(r.out:find('"DeletedRecords": ' .. (hi - lo + 1), 1, true), r.out)
  local _, answered = gets(mark)
  assert(answered < n, "the deletion came after page " .. n .. " was answered: raise the latency")
end

local SUMMARY = "every contact that matched from the first call to the last is in the file, once"

-- The summary line: contacts written and calls made.
local function summary(err)
  local n, calls = err:match("export: (%d+) contacts? in (%d+) calls?: " .. SUMMARY:gsub("%p", "%%%0"))
  return tonumber(n), tonumber(calls)
end

local function config(t) sbx.control("POST", "config", t) end

describe("export contacts", function()
  before_each(function() sbx.reset({ contacts = 1188 }) end) -- idContact 1..1200
  teardown(function()
    sbx.clear_faults()
    sbx.reset()
  end)

  it("writes every contact once on a stable set, and says what it proved", function()
    local mark = sbx.mark()
    local r = run("export contacts --page-size 250")
    assert.are.equal(0, r.code, r.err)
    local times, n = ids_of(r.out)
    assert.are.equal(1200, n)
    assert_once(times, 1, 1200)
    local written, calls = summary(r.err)
    assert.are.equal(1200, written, r.err)
    assert.are.equal(select(2, gets(mark)), calls)
    assert.is_true(calls <= 1200 / (0.75 * 250) + 4, calls .. " calls")
    assert.is_nil(r.err:find("added or deleted", 1, true), r.err)
  end)

  it("skips and repeats none that existed throughout while another process deletes contacts", function()
    sbx.faults { { type = "latency", ms = 600, method = "contacts.get" } }
    local mark = sbx.mark()
    local h = spawn("export contacts --page-size 200", "deleting")
    -- between calls 1 and 2: 50 contacts already written (by StartRow,
    -- page 2 would then start 50 rows late and skip 201..250); between
    -- calls 3 and 4: 50 not written yet
    delete_during_page(mark, 2, 101, 150)
    delete_during_page(mark, 4, 801, 850)
    local rc, out, err = h.wait()
    sbx.clear_faults()
    assert.are.equal(0, rc, err)
    local times = ids_of(out)
    assert_once(times, 1, 1200, function(id) return (id >= 101 and id <= 150) or (id >= 801 and id <= 850) end)
    assert.is_nil(times[801], "deleted before its page was read")
    assert.are.equal(1150, (summary(err)), err)
  end)

  -- class 1: pages in another order than idContact's
  for _, order in ipairs { "email", "descending" } do
    it("writes every contact once when the pages are ordered " .. order .. ", also while contacts are deleted", function()
      config { contacts_order = order }
      local r = run("export contacts --page-size 300")
      assert.are.equal(0, r.code, r.err)
      local times, n = ids_of(r.out)
      assert.are.equal(1200, n)
      assert_once(times, 1, 1200)
      assert.are.equal(1200, (summary(r.err)), r.err)

      sbx.faults { { type = "latency", ms = 400, method = "contacts.get" } }
      local mark = sbx.mark()
      local h = spawn("export contacts --page-size 300", "unordered-" .. order)
      delete_during_page(mark, 2, 13, 62)
      local rc, out, err = h.wait()
      sbx.clear_faults()
      assert.are.equal(0, rc, err)
      assert_once(ids_of(out), 1, 1200, function(id) return id >= 13 and id <= 62 end)
      assert.truthy(summary(err), err)
    end)
  end

  -- class 1: with pages of one, ids always "rise within a page"
  it("writes every contact once with pages of one ordered by e-mail", function()
    sbx.reset { contacts = 28 } -- (the generated ones' e-mails are not in idContact order)
    config { contacts_order = "email" }
    local r = run("export contacts --page-size 1")
    assert.are.equal(0, r.code, r.err)
    local times, n = ids_of(r.out)
    assert.are.equal(40, n)
    assert_once(times, 1, 40)
  end)

  -- class 1 and 6: TotalRecords the page's count, a fixed page below --page-size
  it("writes every contact once when TotalRecords is the count of a fixed page smaller than asked", function()
    config { total_records = "page", paging = "fixed", page_size = 50 }
    local r = run("export contacts --page-size 100")
    assert.are.equal(0, r.code, r.err)
    local times, n = ids_of(r.out)
    assert.are.equal(1200, n)
    assert_once(times, 1, 1200)
  end)

  -- class 1: a server that ignores the clause answers the same contacts to every call
  it("exits 1, saying the file is incomplete, never writing a contact twice, when the server ignores the clause", function()
    config { clause = "ignored" }
    local r = run("export contacts --where City=Paris --page-size 100")
    assert.are.equal(1, r.code, r.err)
    local times = ids_of(r.out)
    for id, k in pairs(times) do assert.are.equal(1, k, "contact " .. id .. " written " .. k .. " times") end
    assert.truthy(r.err:find("did not apply the Clause", 1, true), r.err)
    assert.truthy(r.err:find("the file is incomplete", 1, true), r.err)
    assert.is_nil(summary(r.err), r.err)
  end)

  -- the iterator raises a failed call (issue 22): the export still says
  -- what failed, keeps what it wrote, and exits 1
  it("exits 1, saying what failed and that the file is incomplete, on a 500 after the first page", function()
    local recs = {}
    for i = 1, 5 do recs[i] = ('{"idContact":%d,"f_EMail":"p%d@example.com"}'):format(i, i) end
    sbx.faults {
      { type = "body", next = 1, method = "contacts.get", body = '{"Success":true,"Records":['
        .. table.concat(recs, ",") .. '],"TotalRecords":1200,"idRequest":1}' },
      { type = "status", status = 500, method = "contacts.get" },
    }
    local r = run("export contacts --page-size 5")
    sbx.clear_faults()
    assert.are.equal(1, r.code, r.err)
    local times, n = ids_of(r.out)
    assert.are.equal(5, n, r.out)
    assert_once(times, 1, 5)
    assert.truthy(r.err:find("dialoginsight: export: dialoginsight contacts.Get: http ServerError: ", 1, true), r.err)
    assert.truthy(r.err:find("the file is incomplete: 5 contacts written before the error", 1, true), r.err)
    assert.is_nil(summary(r.err), r.err)
    assert.falsy(r.err:find("traceback", 1, true), r.err)
  end)

  it("writes every contact once when the reply has no TotalRecords", function()
    config { total_records = false }
    local r = run("export contacts --page-size 500")
    assert.are.equal(0, r.code, r.err)
    local times, n = ids_of(r.out)
    assert.are.equal(1200, n)
    assert_once(times, 1, 1200)
  end)

  it("writes every number exactly as received, also beyond 2^63 and past a double's digits", function()
    -- as the reply has them, and as the file must (1e20 reads as a Lua
    -- float, which %d could not write: the export stopped after a partial file)
    local values = { "9223372036854775808", "18446744073709551616", "-9007199254740993",
      "12345678901234567890.123456789", "1e400", "0.30000000000000004", "2147483647", "1.5", "1e20" }
    local written = { [9] = "1e+20" }
    -- the reply below is the first; the sandbox, emptied, answers the next
    local r0 = run([[call contacts Delete '{"Clause":{"$type":"FieldClause","Field":{"Name":"idContact"},]]
      .. [["TypeOperator":"GreaterThan","ComparisonValue":0}}']])
    assert.are.equal(0, r0.code, r0.err)
    local recs = {}
    for i, v in ipairs(values) do
      recs[i] = ('{"idContact":%d,"f_EMail":"n%d@example.com","f_Points":%s,"optin_Newsletter":true}'):format(i, i, v)
    end
    sbx.faults { { type = "body", next = 1, method = "contacts.get", body = '{"Success":true,"ErrorCode":null,'
      .. '"ErrorMessage":null,"Records":[' .. table.concat(recs, ",") .. '],"TotalRecords":' .. #values
      .. ',"idRequest":1}' } }
    local r = run("export contacts")
    assert.are.equal(0, r.code, r.err)
    local lines = {}
    for line in r.out:gmatch("([^\r\n]*)\r\n") do lines[#lines + 1] = line end
    assert.are.equal(#values + 1, #lines, r.out)
    for i, v in ipairs(values) do
      assert.are.equal(("%d,n%d@example.com,,,,,%s,1,"):format(i, i, written[i] or v), lines[i + 1])
    end
    assert.are.equal(9, (summary(r.err)), r.err)
  end)

  it("exits 1 on a full disk, saying the file is incomplete, never 0 with contacts missing", function()
    sbx.reset({ contacts = 5000 })
    local disk = H.TMP .. "/export-disk"
    os.execute("mkdir -p " .. q(disk))
    assert(os.execute("mount -t tmpfs -o size=64k tmpfs " .. q(disk)), "mount a tmpfs (needs root)")
    finally(function() os.execute("umount " .. q(disk) .. " 2> /dev/null") end)
    local errf = H.TMP .. "/export-disk.err"
    local ok, _, code = os.execute(H.ENV .. q(H.BIN) .. " export contacts > " .. q(disk .. "/out.csv")
      .. " 2> " .. q(errf))
    local r = { code = ok == true and 0 or code, err = slurp(errf) or "" }
    -- before: exit 0 and "every contact ... is in the file", 992 of 5012 written
    assert.equal(1, r.code, r.err)
    assert.truthy(r.err:find("cannot write the output", 1, true), r.err)
    assert.truthy(r.err:find("the file is incomplete", 1, true), r.err)
    assert.falsy(r.err:find(SUMMARY, 1, true), r.err)
  end)

  it("refuses a --page-size that is not a positive whole number", function()
    for _, v in ipairs { "0", "-5", "abc", "2.5" } do
      local r = run("export contacts --page-size " .. v)
      assert.are.equal(64, r.code, v)
      assert.truthy(r.err:find("--page-size", 1, true), r.err)
    end
  end)
end)
