--- The pages of `dialoginsight export contacts` (cli/export.lua owns it).
--
-- Paging by StartRow skips a contact for every one deleted before it while
-- the export runs, and repeats one for every one added: an export skipped 50
-- contacts that existed throughout because others were deleted meanwhile.
-- So the export pages by key: each page asks for the matches with idContact
-- greater than the last one written, from StartRow 0, which skips and
-- repeats none that exists throughout, whatever else changes.  That needs
-- pages in increasing idContact order, the sandbox's and [assumed] the
-- service's: every page is checked, and from one that is not, the export
-- goes on by StartRow and says so.  TotalRecords, when given, checks the
-- count, and tells whether the matches changed during the export.
local base = require "dialoginsight.resources.base"
local errors = require "dialoginsight.errors"
local W = require "dialoginsight.records.where"

local M = {}

local Pages = {}
Pages.__index = Pages

--- client, the user's where (a di.where clause, or nil for every contact),
-- and the page size.
function M.new(client, where, size)
  return setmetatable({
    client = client, where = where, size = size,
    mode = "key", last = 0,  -- key mode: the last idContact written (ids are positive)
    offset = 0,              -- StartRow mode: rows of `frozen` already written
    page = 0, written = 0,
    totals = true,           -- every reply gave TotalRecords
    first_total = nil, expect = nil,
    changed = nil,           -- "key" or "offset": the mode of a page whose TotalRecords moved
    fell_back = nil,         -- why the export left key paging, when it did
  }, Pages)
end

local function key_where(self)
  local after = W.gt("idContact", self.last)
  return self.where and W.all { self.where, after } or after
end

-- Whether the idContact of every record is a whole number above `after`,
-- each above the one before; or false and the first record that is not.
local function increasing(records, after)
  local prev = after
  for i, r in ipairs(records) do
    local id = type(r) == "table" and r.idContact
    if type(id) ~= "number" or id ~= math.floor(id) or id <= prev then return false, i end
    prev = id
  end
  return true
end

-- TotalRecords of this page against what the last one said; then what the
-- next one must say on an unchanged set: the remaining matches in key
-- mode, the same count by StartRow.
local function count(self, total, n)
  if type(total) ~= "number" then self.totals = false; return end
  self.first_total = self.first_total or total
  if self.expect and total ~= self.expect then self.changed = self.changed or self.fetched_as end
  self.expect = self.mode == "key" and total - n or total
end

local function finished(self, total, n)
  if n == 0 then return true end
  if type(total) ~= "number" then return false end -- until an empty page
  if self.mode == "key" and self.fetched_as == "key" then return n >= total end
  return self.offset >= total
end

--- The next page's records (wire records, as the server sent them), nil
-- when the export is done, or false, err.
function Pages:next()
  if self.done then return nil end
  self.page = self.page + 1
  self.fetched_as = self.mode
  local w = self.mode == "key" and key_where(self) or self.frozen
  local clause, err = base.clause(self.client, w, nil, "contacts", "Get")
  if not clause then return false, err end
  local resp
  resp, err = self.client:call("contacts", "Get", { Clause = clause, MaxRows = self.size,
    StartRow = self.mode == "key" and 0 or self.offset })
  if not resp then return false, err end
  local records = resp.Records
  if type(records) ~= "table" then
    return false, errors.new { kind = "decode", service = "contacts", method = "Get",
      request_id = resp.idRequest, message = "the reply has no Records" }
  end
  local n = #records
  if self.mode == "key" then
    local ok, at = increasing(records, self.last)
    if ok then
      if n > 0 then self.last = records[n].idContact end
    else
      -- by StartRow from here, within the clause this page answered
      self.mode, self.frozen, self.offset = "offset", w, 0
      self.fell_back = ("page %d was not in increasing idContact order (record %d)"):format(self.page, at)
    end
  end
  if self.mode == "offset" then self.offset = self.offset + n end
  count(self, resp.TotalRecords, n)
  self.written = self.written + n
  self.done = finished(self, resp.TotalRecords, n)
  return records
end

--- What the export could check, as lines for stderr, and its exit status:
-- 0, or 1 when the file may lack or repeat contacts.
function Pages:report()
  local lines, status = {}, 0
  if self.fell_back then
    lines[#lines + 1] = self.fell_back .. ": paged by StartRow from there on"
  else
    lines[#lines + 1] = "paged by idContact (greater than the last one written)"
  end
  if not self.totals then
    lines[#lines + 1] = "TotalRecords not given: the count could not be checked"
  elseif self.changed == "offset" then
    lines[#lines + 1] = ("the matches changed while paging by StartRow (TotalRecords %d at the start, %d "
      .. "written): contacts may be missing or written twice; export again"):format(self.first_total, self.written)
    status = 1
  elseif self.changed then
    lines[#lines + 1] = ("contacts were added or deleted during the export (TotalRecords %d at the start, %d "
      .. "written): every contact that existed throughout is in the file once"):format(self.first_total, self.written)
  elseif self.written ~= self.first_total then
    lines[#lines + 1] = ("TotalRecords said %d, %d written: the pages do not add up")
      :format(self.first_total, self.written)
    status = 1
  else
    lines[#lines + 1] = ("the count matches TotalRecords (%d)"):format(self.written)
  end
  return lines, status
end

return M
