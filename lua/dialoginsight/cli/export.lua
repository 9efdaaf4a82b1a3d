--- `dialoginsight export contacts`: the matching contacts as CSV on stdout,
-- page by page (contacts:each), so memory holds one page whatever the count.
local di = require "dialoginsight"
local host = require "dialoginsight.host"
local csv = require "dialoginsight.cli.csv"

local M = { name = "export", needs_client = true,
            options = { help = "flag", where = "list", ["page-size"] = "value" } }

local HELP = [[
usage: dialoginsight export contacts [--where FIELD=VALUE]... [--page-size N] > out.csv

Writes the matching contacts (all of them without --where) as CSV on
stdout, paging through Contacts.Get.  --where takes FIELD=VALUE, FIELD!=VALUE,
FIELD>VALUE or FIELD<VALUE; several are joined with And.  The columns are
idContact, the project's fields and optin_<name> columns, so the file can be
synced back.
]]

local W = di.where
local OPS = { { "!=", W.ne }, { ">", W.gt }, { "<", W.lt }, { "=", W.eq } }

-- "City=Paris" -> W.eq("City", "Paris"), and so on; or nil, why.
local function clause(text)
  for _, op in ipairs(OPS) do
    local i = text:find(op[1], 1, true)
    if i and i > 1 then
      return op[2](text:sub(1, i - 1), text:sub(i + #op[1]))
    end
  end
  return nil, "--where expects FIELD=VALUE (or !=, >, <), got '" .. text .. "'"
end

local function cell(v)
  if v == true then return "1" elseif v == false then return "0" end
  if v == nil or v == di.null then return "" end
  if math.type(v) == "float" and v == math.floor(v) then return string.format("%d", v) end
  return tostring(v)
end

M.help = HELP

function M.check(opts, pos)
  if pos[1] ~= "contacts" or #pos ~= 1 then return "export contacts [--where FIELD=VALUE]..." end
  opts.where = opts.where or {}
  opts.page_size = math.tointeger(tonumber(opts["page-size"] or "")) or 500
end

--- opts: where (list of FIELD=VALUE), page_size.  Returns the exit status.
function M.run(client, opts)
  local schema, err = client.projects:fields()
  if not schema then io.stderr:write("dialoginsight: export: ", tostring(err), "\n"); return 1 end
  local list = {}
  for _, w in ipairs(opts.where) do
    local c, why = clause(w)
    if not c then io.stderr:write("dialoginsight: export: ", why, "\n"); return 64 end
    list[#list + 1] = c
  end
  -- no filter means every contact: idContact > 0 holds for all of them
  local where = #list == 0 and W.gt("idContact", 0) or (#list == 1 and list[1] or W.all(list))
  local head, get = { "idContact" }, { function(c) return c.idContact end }
  for _, f in ipairs(schema.fields) do
    head[#head + 1] = f.name
    get[#get + 1] = function(c) return c[f.name] end
  end
  for _, o in ipairs(schema.optins) do
    head[#head + 1] = o.wire
    get[#get + 1] = function(c) return c.optin and c.optin[o.name] end
  end
  local out = io.stdout
  out:write(csv.line(head))
  local n = 0
  for c, e in client.contacts:each(where, { page_size = opts.page_size }) do
    if not c then
      io.stderr:write("dialoginsight: export: ", tostring(e), "\n")
      return 1
    end
    local row = {}
    for j, g in ipairs(get) do row[j] = cell(g(c)) end
    out:write(csv.line(row))
    n = n + 1
    if host.interrupted() then return 130 end
  end
  out:flush()
  io.stderr:write("dialoginsight: export: ", n, n == 1 and " contact\n" or " contacts\n")
  return 0
end

return M
