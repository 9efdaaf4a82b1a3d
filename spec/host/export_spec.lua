-- `dialoginsight export contacts` as a user runs it, against the sandbox:
-- no contact that exists throughout is skipped or written twice, also when
-- others are deleted during the export (by a second process, between two
-- pages); pages not in idContact order, a reply without TotalRecords, and
-- numbers a double cannot hold, each said or written as they are.
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

describe("export contacts", function()
  before_each(function() sbx.reset({ contacts = 1188 }) end) -- idContact 1..1200
  teardown(function()
    sbx.clear_faults()
    sbx.reset()
  end)

  it("writes every contact once on a stable set, and checks the count against TotalRecords", function()
    local mark = sbx.mark()
    local r = run("export contacts --page-size 250")
    assert.are.equal(0, r.code, r.err)
    local times, n = ids_of(r.out)
    assert.are.equal(1200, n)
    assert_once(times, 1, 1200)
    assert.truthy(r.err:find("paged by idContact", 1, true), r.err)
    assert.truthy(r.err:find("the count matches TotalRecords (1200)", 1, true), r.err)
    assert.are.equal(5, select(2, gets(mark)), "ceil(1200 / 250) pages, no empty one")
  end)

  it("skips and repeats none that existed throughout while another process deletes contacts", function()
    sbx.faults { { type = "latency", ms = 600, method = "contacts.get" } }
    local mark = sbx.mark()
    local h = spawn("export contacts --page-size 200", "deleting")
    -- between pages 1 and 2: 50 contacts already written (by StartRow,
    -- page 2 would then start 50 rows late and skip 201..250); between
    -- pages 3 and 4: 50 not written yet
    delete_during_page(mark, 2, 101, 150)
    delete_during_page(mark, 4, 801, 850)
    local rc, out, err = h.wait()
    sbx.clear_faults()
    assert.are.equal(0, rc, err)
    local times = ids_of(out)
    assert_once(times, 1, 1200, function(id) return (id >= 101 and id <= 150) or (id >= 801 and id <= 850) end)
    assert.is_nil(times[801], "deleted before its page was read")
    assert.truthy(err:find("1150 contacts", 1, true), err)
    assert.truthy(err:find("contacts were added or deleted during the export (TotalRecords 1200 at the start, "
      .. "1150 written)", 1, true), err)
  end)

  it("says when pages are not in idContact order, and goes on by StartRow", function()
    sbx.control("POST", "config", { contacts_order = "email" })
    local r = run("export contacts --page-size 300")
    assert.are.equal(0, r.code, r.err)
    local times, n = ids_of(r.out)
    assert.are.equal(1200, n)
    assert_once(times, 1, 1200)
    assert.truthy(r.err:find("page 1 was not in increasing idContact order", 1, true), r.err)
    assert.truthy(r.err:find("paged by StartRow from there on", 1, true), r.err)
    assert.truthy(r.err:find("the count matches TotalRecords (1200)", 1, true), r.err)
  end)

  it("fails, saying why, when the matches change while it pages by StartRow", function()
    sbx.control("POST", "config", { contacts_order = "email" })
    sbx.faults { { type = "latency", ms = 600, method = "contacts.get" } }
    local mark = sbx.mark()
    local h = spawn("export contacts --page-size 300", "unordered")
    delete_during_page(mark, 2, 13, 62)
    local rc, _, err = h.wait()
    sbx.clear_faults()
    assert.are.equal(1, rc, err)
    assert.truthy(err:find("the matches changed while paging by StartRow", 1, true), err)
    assert.truthy(err:find("may be missing or written twice", 1, true), err)
  end)

  it("says that the count could not be checked when the reply has no TotalRecords", function()
    sbx.control("POST", "config", { total_records = false })
    local mark = sbx.mark()
    local r = run("export contacts --page-size 500")
    assert.are.equal(0, r.code, r.err)
    local times, n = ids_of(r.out)
    assert.are.equal(1200, n)
    assert_once(times, 1, 1200)
    assert.truthy(r.err:find("TotalRecords not given: the count could not be checked", 1, true), r.err)
    assert.are.equal(4, select(2, gets(mark)), "500 + 500 + 200, then an empty page ends it")
  end)

  it("writes every number exactly as received, also beyond 2^63 and past a double's digits", function()
    -- as the reply has them, and as the file must (1e20 reads as a Lua
    -- float, which %d could not write: the export stopped after a partial file)
    local values = { "9223372036854775808", "18446744073709551616", "-9007199254740993",
      "12345678901234567890.123456789", "1e400", "0.30000000000000004", "2147483647", "1.5", "1e20" }
    local written = { [9] = "1e+20" }
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
    assert.truthy(r.err:find("the count matches TotalRecords (9)", 1, true), r.err)
  end)

  it("refuses a --page-size that is not a positive whole number", function()
    for _, v in ipairs { "0", "-5", "abc", "2.5" } do
      local r = run("export contacts --page-size " .. v)
      assert.are.equal(64, r.code, v)
      assert.truthy(r.err:find("--page-size", 1, true), r.err)
    end
  end)
end)
