--- Test support: an in-process server of paged records, as adversarial as
-- a scenario asks, behind a fake transport (docs/transport.md), for specs
-- that need thousands of iterations (spec/client/iteration_property_spec.lua)
-- or one behaviour no real server is known to have (spec/client/paging_spec.lua).
--
--   local fake = require "support.fake_pages"
--   local s = fake.new { records = { { idContact = 1, f_City = "X" }, ... },
--                        order = "email", cap = 7, total = "page" }
--   local client = s:client()
--
-- Behaviours (each a field of the table given to new):
--   order   contacts.Get's order of the matches: "id" (default), "desc",
--           "email", "random" (a new shuffle on every call, needs rng);
--           the list methods keep the list's own order
--   cap     the records a reply holds at most: "honoured" (MaxRows, the
--           default), a number (a fixed page, whatever MaxRows says), or
--           math.huge (paging ignored)
--   start   StartRow: "honoured", "ignored", "early" (the reply starts one
--           record earlier: a 1-based reading), "late" (one later)
--   total   TotalRecords: "right", "missing", "page" (the reply's count),
--           "stale" (the first call's count), "random" (needs rng), or a number
--   clause  "honoured", or "ignored" (every record, matching or not)
--   noid    { [idContact] = true }: those records are answered without it
--   before  function(server, call) run before each call is answered: the
--           place for deletions and insertions (server.list is the list)
-- server.calls counts the calls, server.requests[k] is the k-th request.
local core = require "dialoginsight.core"
local config = require "dialoginsight.config"
local client_mod = require "dialoginsight.client"
local raised = require "support.raised"

local M = {}

local Server = {}
Server.__index = Server

local function test(clause, rec)
  if clause["$type"] == "ComboClause" then
    local any = clause.Operator == "Or"
    for _, c in ipairs(clause.Clauses) do
      local r = test(c, rec)
      if any and r then return true end
      if not any and not r then return false end
    end
    return not any
  end
  local op, want = clause.TypeOperator, clause.ComparisonValue
  local v = rec[clause.Field.Name]
  if op == "IsNull" then return v == nil end
  if op == "IsNotNull" then return v ~= nil end
  if v == nil then return false end
  if op == "Equal" then return v == want end
  if op == "NotEqual" then return v ~= want end
  if op == "GreaterThan" then return v > want end
  if op == "LessThan" then return v < want end
  error("fake server: no operator " .. tostring(op))
end
M.test = test

function M.new(o)
  local s = setmetatable({}, Server)
  for k, v in pairs(o) do s[k] = v end
  s.list = s.list or s.records or {}
  s.records = nil
  s.cap, s.start, s.total = s.cap or "honoured", s.start or "honoured", s.total or "right"
  s.clause, s.order = s.clause or "honoured", s.order or "id"
  s.calls, s.requests = 0, {}
  return s
end

local function by(field, desc)
  return function(a, b)
    local x, y = a[field], b[field]
    if x == nil or y == nil then return x ~= nil and y == nil end
    if desc then return x > y end
    return x < y
  end
end

-- The matches of a contacts.Get, in the server's order of this call.
function Server:matches(req)
  local out = {}
  for _, rec in ipairs(self.list) do
    if self.clause == "ignored" or req.Clause == nil or test(req.Clause, rec) then out[#out + 1] = rec end
  end
  if self.order == "id" then table.sort(out, by("idContact"))
  elseif self.order == "desc" then table.sort(out, by("idContact", true))
  elseif self.order == "email" then table.sort(out, by("f_EMail"))
  elseif self.order == "random" then self.rng:shuffle(out) end
  return out
end

function Server:answer(req, method)
  self.calls = self.calls + 1
  if self.before then self.before(self, self.calls) end
  self.requests[self.calls] = req
  local all = method == "get" and self:matches(req) or self.list
  local max = req.MaxRows or 10000
  local cap = self.cap == "honoured" and max or self.cap
  local start = self.start == "ignored" and 0 or (req.StartRow or 0)
  if self.start == "early" then start = math.max(0, start - 1) end
  if self.start == "late" then start = start + 1 end
  local recs = {}
  for i = start + 1, math.min(#all, start + cap) do
    local rec = all[i]
    if self.noid and self.noid[rec.idContact] then
      rec = {}
      for k, v in pairs(all[i]) do if k ~= "idContact" then rec[k] = v end end
    end
    recs[#recs + 1] = rec
  end
  local r = { Success = true, Records = core.array(recs), idRequest = self.calls }
  local T = #all
  if self.total == "page" then T = #recs
  elseif self.total == "stale" then self.first_total = self.first_total or #all; T = self.first_total
  elseif self.total == "random" then T = self.rng:int(0, 2 * #all + 5)
  elseif type(self.total) == "number" then T = self.total end
  if self.total ~= "missing" then r.TotalRecords = T end
  return r
end

--- The fake transport of this server.
function Server:transport()
  local s = self
  local t = {}
  function t.now() return 0 end
  function t.sleep() end
  function t.post(_, url, body)
    local req = core.decode(body)
    local method = url:match("method=(%w+)"):lower()
    local reply = assert(core.encode(s:answer(req, method == "get" and "get" or "list")))
    return { status = 200, body = reply, seconds = 0, http_version = 1.1 }
  end
  return t
end

--- A client of this server (strict off: the where's names are sent as given).
function Server:client(extra)
  local settings = { key_id = 1, key = "fake-server-key", project = 1, base_url = "https://fake.invalid/",
                     strict = false, rate = false, retries = 0, env = false }
  for k, v in pairs(extra or {}) do settings[k] = v end
  return client_mod.new(config.resolve(settings), self:transport())
end

--- Runs an iterator (and its state) to its end: the records, and the error
-- object it ended on (spec/support/raised.lua checks how it was raised).
function M.drain(iter, it)
  local list = {}
  local err = raised.failure(it, function()
    for rec in iter do list[#list + 1] = rec end
  end)
  return list, err
end

return M
