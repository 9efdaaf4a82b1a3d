--- `dialoginsight export contacts`: the matching contacts as CSV on stdout, as
-- client.contacts:each yields them (resources/pager_ids.lua), so memory holds about
-- one page.  Exit 0 only when the iteration proved that every contact that matched
-- from its first call to its last is in the file, once.
local di = require "dialoginsight"
local host = require "dialoginsight.host"
local csv = require "dialoginsight.cli.csv"
local commands = require "dialoginsight.cli.commands"

local M = { name = "export", needs_client = true, priority = "batch", -- (as sync's)
            usage = "export contacts [--where FIELD=VALUE]... [--page-size N] > out.csv",
            options = {
              { "--where", "FIELD=VALUE", "only the contacts where FIELD=VALUE; also !=, >, >=, <, <= "
                .. "(repeatable: joined with And)", many = true },
              { "--page-size", "N", "contacts per Contacts.Get call (default 500)" },
            } }

local HELP = [[
Writes the matching contacts (all of them without --where) as CSV on
stdout, paging through Contacts.Get.  The columns are idContact, the
project's fields and optin_<name> columns, so the file can be synced back.]]

M.epilog = [[
Pages go by windows of idContact, each proven complete by the replies
themselves, whatever order the server answers in: every contact that
matched from the first call to the last is in the file once (contacts
added or deleted meanwhile may or may not be).  Exit status 1, and the
file incomplete, when a call fails or the server's replies cannot be
trusted (it ignored the clause, say); stderr says which.
]]

local W = di.where
-- The clause operators (docs/wire.md) have no "or equal": >= is > or =, <= is < or =.
local OPS = {
  ["="] = W.eq, ["!="] = W.ne, [">"] = W.gt, ["<"] = W.lt,
  [">="] = function(f, v) return W.any { W.gt(f, v), W.eq(f, v) } end,
  ["<="] = function(f, v) return W.any { W.lt(f, v), W.eq(f, v) } end,
}

-- "City=Paris" -> W.eq("City", "Paris"), and so on; or nil, why.  The
-- operator is what follows the field's name (which holds none of !<>=), so
-- that "Points>=5" is >= 5, never > "=5".
local function clause(text)
  local name, op, value = text:match("^([^!<>=]+)([!<>=]=?)(.*)$")
  if name and OPS[op] then return OPS[op](name, value) end
  return nil, "--where expects FIELD=VALUE (or !=, >, >=, <, <=), got '" .. text .. "'"
end

-- A number as text that reads back as the same number: an integer in full;
-- another in the shortest of %.15g, %.16g, %.17g that does.  Numbers a double
-- cannot hold arrive as strings (docs/json.md) and are written as received.
local function number_text(v)
  if math.type and math.type(v) == "integer" then return string.format("%d", v) end
  if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return string.format("%.0f", v) end
  for _, fmt in ipairs { "%.15g", "%.16g" } do
    local s = string.format(fmt, v)
    if tonumber(s) == v then return s end
  end
  return string.format("%.17g", v)
end

local function cell(v)
  if v == true then return "1" elseif v == false then return "0" end
  if v == nil or v == di.null then return "" end
  if type(v) == "number" then return number_text(v) end
  if type(v) == "table" then return di.encode(v) or "" end
  return tostring(v)
end

M.help = HELP

function M.check(opts, pos)
  if pos[1] ~= "contacts" or #pos ~= 1 then return "export contacts [--where FIELD=VALUE]..." end
  opts.clauses = {}
  for _, w in ipairs(opts.where or {}) do
    local c, why = clause(w)
    if not c then return why end
    opts.clauses[#opts.clauses + 1] = c
  end
  opts.page_size = 500
  if opts["page-size"] then
    opts.page_size = math.tointeger(tonumber(opts["page-size"]))
    if not opts.page_size or opts.page_size < 1 then return "--page-size expects a positive whole number" end
  end
end

-- The header and, per column, how to read it from a wire record.
local function columns(schema)
  local head, get = { "idContact" }, { function(c) return c.idContact end }
  for _, f in ipairs(schema.fields) do
    head[#head + 1] = f.name
    get[#get + 1] = function(c) return c[f.name] end
  end
  for _, o in ipairs(schema.optins) do
    head[#head + 1] = o.wire
    get[#get + 1] = function(c) return c.optin and c.optin[o.name] end
  end
  return head, get
end

local function fail(e) io.stderr:write("dialoginsight: export: ", commands.cli_terms(e), "\n"); return 1 end

--- opts (clauses, page_size) as check() leaves them; returns the exit status.
function M.run(client, opts)
  local schema, err = client.projects:fields()
  if not schema then return fail(err) end
  local list = opts.clauses
  local head, get = columns(schema)
  local out = io.stdout
  local n = 0
  -- Every write is checked: a full disk or a closed file must never end in
  -- an exit 0 and a summary that says every contact is in the file.
  local function incomplete(why)
    out:flush()
    io.stderr:write("dialoginsight: export: ", commands.cli_terms(why), "\n",
      "dialoginsight: export: the file is incomplete: ", commands.count(n, "contact"),
      " written before the error\n")
    return 1
  end
  local ok, werr = out:write(csv.line(head))
  if not ok then return incomplete("cannot write the output: " .. tostring(werr)) end
  local o = { page_size = opts.page_size }
  local iter, it
  if #list == 0 then iter, it = client.contacts:all(o)
  else iter, it = client.contacts:each(#list > 1 and W.all(list) or list[1], o) end
  -- Ctrl-C lets the page call in flight end, then stops with what was written; a
  -- second one ends the process (the host cannot leave a call before its reply).
  -- The iterator raises a failure: only the library's (it.failed) is reported as such.
  local function step()
    host.inflight(1)
    local c = iter()
    host.inflight(0)
    return c
  end
  local status
  host.graceful("once")
  local done, raised = pcall(function()
    for c in step do
      if host.interrupted() then
        out:flush()
        io.stderr:write("dialoginsight: export: interrupted: the file is incomplete: ",
          commands.count(n, "contact"), " written\n")
        status = 130
        return
      end
      local row = {}
      for j, g in ipairs(get) do row[j] = cell(g(c)) end
      ok, werr = out:write(csv.line(row))
      if not ok then status = incomplete("cannot write the output: " .. tostring(werr)); return end
      n = n + 1
    end
  end)
  host.inflight(0)
  host.graceful(false)
  if not done then
    if it.failed == nil then error(raised, 0) end
    return incomplete(tostring(it.failed))
  end
  if status then return status end
  ok, werr = out:flush()
  if not ok then return incomplete("cannot write the output: " .. tostring(werr)) end
  io.stderr:write("dialoginsight: export: ", commands.count(n, "contact"), " in ",
    commands.count(it.calls, "call"), ": every contact that matched from the first "
    .. "call to the last is in the file, once\n")
  return 0
end

return M
