--- `dialoginsight probe [--writes] [--record DIR]`: which of the registry's
-- methods exist on the user's account, with the safest call that tells
-- (docs/wire.md, "What dialoginsight probe checks").  Methods that write are
-- called only with --writes, and then only with a payload the server must refuse
-- or that changes nothing: never a real send, create or delete.
local core = require "dialoginsight.core"
local host = require "dialoginsight.host"
local files = require "dialoginsight.cli.files"
local commands = require "dialoginsight.cli.commands"

local M = { name = "probe", needs_client = true, usage = "probe [--writes] [--record DIR]",
            options = {
              { "--writes", nil, "also probe methods that write, with payloads the server must "
                .. "refuse or that change nothing (no send, create or delete)" },
              { "--record", "DIR", "write each exchange to DIR/<method>.json (an existing directory; "
                .. "the key redacted, the server's Trace kept; files 0600, no symbolic link followed), "
                .. "as fixtures to share or replay" },
            } }

M.help = [[
Calls every method of the registry on your account in the safest way that
shows whether it exists, and prints: the method, its evidence (seen, one,
doc, assumed: docs/wire.md), the result (exists, unknown method, refused
with the server's code and message, network), the HTTP status, the time,
and, for methods that page, whether paging was honoured (1 row asked).]]

M.epilog = [[
exit status: 0 when every method marked seen that was probed exists, else 1
]]

-- A clause that can match no contact: a field no project has.
local NOTHING = { ["$type"] = "FieldClause", Field = { Name = "f_dialoginsight_probe_none" },
                  TypeOperator = "Equal", ComparisonValue = "probe" }
local SOME = { ["$type"] = "FieldClause", Field = { Name = "idContact" },
               TypeOperator = "GreaterThan", ComparisonValue = 0 }
local NOBODY = { Mode = "Single", idContact = 0 }

-- The parameters of each probe, by the library's name of the method; the
-- paging members are added from the method's paging contract.
local PARAMS = {
  ["contacts.Get"] = { Clause = SOME },
  ["contacts.Merge"] = { Records = core.array {} },
  ["contacts.Delete"] = { Clause = NOTHING, MaxRows = 1 },
  ["relationaltables.Get"] = { idTable = 0, Clause = NOTHING },
  ["relationaltables.Merge"] = { idTable = 0, Records = core.array {} },
  ["relationaltables.Delete"] = { idTable = 0, Clause = NOTHING },
  ["sendings.SendSingle"] = { idMessage = 0, ContactFilter = NOBODY },
  ["sendings.SendSingle2"] = { idMessage = 0, ContactFilter = NOBODY },
  ["sendings.SendBatch"] = { idMessage = 0, ContactFilter = { Mode = "idFilters", idFilters = core.array {} } },
  ["sendings.GetBatches"] = { BatchFilter = { BatchFilterMode = "idBatch", idBatch_Min = 0, idBatch_Max = 0 } },
  ["messages.Create"] = { Message = { MessageVersions = core.array {} } },
  ["messages.Get"] = { idMessage = 0 },
  ["segments.GetContacts"] = { idSegment = 0 },
  ["segments.Merge"] = { Segment = { idSegment = 0 } },
  ["campaigns.Create"] = { Campaign = { idMessage = 0 } },
  ["campaigns.Trigger"] = { idCampaign = 0, ContactFilter = NOBODY },
  ["campaigns.GetStatistics"] = { idCampaign = 0 },
  ["reports.GetContactHistory"] = { idContact = 0 },
}

-- The wire names (service.method, lower-cased) of the methods that write,
-- as the library names them and as the overrides do.
local function write_names(registry)
  local names = {}
  for e in registry:each() do
    if e.writes then
      local service, method = e.name:match("^(.-)%.(.+)$")
      names[(service .. "." .. method):lower()] = true
      names[(e.service .. "." .. e.method):lower()] = true
    end
  end
  return names
end

-- Whether a method writes: the registry's `writes`, an override that made it
-- non-idempotent, or a wire name of a writing method (an override can point a
-- read at contacts.Delete).
local function writes(entry, names)
  return entry.writes or not entry.idempotent or names[(entry.service .. "." .. entry.method):lower()]
end

-- The verdict of one probe from the call's result.
local function verdict(resp, err)
  if resp then return "exists" end
  if err.code == "UnknownMethod" or err.status == 404 then return "unknown method" end
  if err.kind == "network" or err.kind == "timeout" or err.kind == "tls" then
    return err.kind .. ": " .. tostring(err.message)
  end
  if err.kind == "rate_limited" then return "limited (the call limit): " .. tostring(err.message) end
  return "refused: " .. tostring(err.code or err.kind) .. " " .. tostring(err.message)
end

-- Whether the method's paging was honoured: 1 row asked for.
local function paging_of(P, resp)
  if not P then return "" end
  if not resp then return "—" end
  local recs = resp[P.records]
  local n = type(recs) == "table" and #recs or 0
  if n == 1 then return "honoured" end
  if n > 1 then return "ignored (" .. n .. " rows)" end
  return "unknown (no rows)"
end

-- Wraps the client's transport so that each exchange is kept (for --record).
local function tap(client)
  local t, last = client.transport, nil
  local post = t.post
  t.post = function(self, url, body, timeout, fresh)
    local r = post(self, url, body, timeout, fresh)
    last = { url = url, body = body, reply = r }
    return r
  end
  return function() return last end
end

local function record(dir, entry, ex, redact)
  if not ex then return true end
  local req = core.decode(ex.body) or {}
  if type(req.AuthKey) == "table" then req.AuthKey.Key = "<redacted>" end
  local reply = { status = ex.reply.status, kind = ex.reply.kind, message = ex.reply.message,
                  body = redact(ex.reply.body) }
  -- a fixture holds contact data: 0600 (files.replace's default)
  return files.replace(dir .. "/" .. entry.name .. ".json", require("dialoginsight.cli.json").pretty {
    method = entry.name, url = ex.url, request = req, reply = reply,
  } .. "\n")
end

-- Probes one entry: a row of the table, whether it exists, and whether the
-- call limit (either form: call/reply.lua) answered instead; or nil, why
-- the exchange could not be recorded.
local function probe(client, entry, opts, last, names)
  local name = entry.name
  if writes(entry, names) and not opts.writes then
    return { name, entry.wire, "not probed (writes: --writes)", "", "", "" }
  end
  local P = client.registry.paging(entry)
  local params = {}
  for k, v in pairs(PARAMS[name] or {}) do params[k] = v end
  -- a method renamed by an override may be anything: a clause that
  -- matches no contact, whatever it does with it
  if entry.overridden and params.Clause then params.Clause = NOTHING end
  if P then params[P.max], params[P.start] = 1, P.first or 0 end
  local ev
  client.on_call = function(e) ev = e end
  -- called by the library's name, so that an override of the wire name counts
  local service, method = name:match("^(.-)%.(.+)$")
  local resp, err = client:call(service, method, params, { retries = 0 })
  client.on_call = nil
  if opts.record then
    local ok, why = record(opts.record, entry, last(), client.engine.redact)
    if not ok then return nil, why end
  end
  return { name, entry.wire, verdict(resp, err), tostring(ev and ev.status or ""),
           ev and string.format("%.1f", ev.seconds * 1000) or "", paging_of(P, resp) }, resp ~= nil,
         err and err.kind == "rate_limited"
end

--- Probes every registry entry; returns the exit status.
function M.run(client, opts)
  if opts.record then
    -- (no shell: the directory must exist, as with tar -C)
    local dir = opts.record:gsub("(.)/+$", "%1")
    local ok, why
    -- LINK/. or LINK/x/.. name a directory that is not the entry the
    -- link check looks at: only plain paths are taken
    local dotted = false
    for part in dir:gmatch("[^/]+") do dotted = dotted or part == "." or part == ".." end
    if dotted then
      ok, why = false, "give the directory by a plain path (no . or .. in it)"
    elseif host.islink(dir) ~= false then
      local _, lerr = host.islink(dir)
      ok, why = false, lerr or "it is a symbolic link: not followed"
    else
      ok, why = files.replace(dir .. "/.dialoginsight-probe", "")
      if ok then os.remove(dir .. "/.dialoginsight-probe") end
    end
    if not ok then
      io.stderr:write("dialoginsight: probe: cannot write in ", opts.record,
        " (it must be an existing directory): ", tostring(why), "\n")
      return 1
    end
  end
  local last = tap(client)
  local rows, missing, limited, names = {}, {}, 0, write_names(client.registry)
  -- Ctrl-C: the probe in flight ends, the table shows those made (the host
  -- says so at once; a second Ctrl-C ends the process)
  host.graceful("once")
  local interrupted = false
  for entry in client.registry:each() do
    if host.interrupted() then interrupted = true; break end
    host.inflight(1)
    local row, exists, was_limited = probe(client, entry, opts, last, names)
    host.inflight(0)
    if not row then
      io.stderr:write("dialoginsight: probe: --record: ", exists, "\n")
      return 1
    end
    if was_limited then limited = limited + 1 end
    rows[#rows + 1] = row
    if entry.wire == "seen" and row[3] ~= "not probed (writes: --writes)" and not exists then
      missing[#missing + 1] = entry.name
    end
  end
  io.stdout:write("probe of ", client.base_url, " (key id ", tostring(client.key_id),
    ", project ", tostring(client.project), ")\n")
  commands.table_print(rows,
    { "method", "evidence", "result", "HTTP", "ms", "paging" })
  if limited > 0 then
    -- the call limit says nothing of the method: the probe was too fast
    io.stdout:write(commands.count(limited, "probe"), " met the key's call limit, which tells nothing of the method: ",
      "run the probe again later, or with a lower DI_RATE\n")
  end
  if interrupted then
    io.stderr:write("dialoginsight: probe: interrupted: ", commands.count(#rows, "method"),
      " probed, the others not\n")
    return 130
  end
  if #missing > 0 then
    io.stdout:write("methods marked seen that did not answer as existing: ",
      table.concat(missing, ", "), "\n")
    return 1
  end
  return 0
end

M.PARAMS = PARAMS

return M
