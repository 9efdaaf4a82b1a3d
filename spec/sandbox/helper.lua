-- Shared helpers for the sandbox specs. They drive the sandbox with the curl
-- CLI (TLS verified against DI_CA_FILE), never with the project's own client.
-- Bodies go through temp files (curl -d @file), so the key never sits in argv.
local cjson = require "cjson"

local H = {}

local function env(name)
  local v = os.getenv(name)
  if not v or v == "" then
    error(("\n\n%s is not set: the sandbox specs need a running sandbox.\n" ..
      "Start it with:  sandbox/ctl start && . build/sandbox/env && busted --lua=lua5.4 spec/sandbox\n"):format(name), 0)
  end
  return v
end

H.BASE = env("DI_BASE_URL")
H.CA = env("DI_CA_FILE")
H.KEY_ID = tonumber(env("DI_KEY_ID"))
H.KEY = env("DI_KEY")
H.PROJECT = tonumber(env("DI_PROJECT"))
H.HTTP_BASE = env("DI_SANDBOX_HTTP_URL")
H.ROOT = env("DI_SANDBOX_URL")
H.NOPERM_KEY_ID = tonumber(env("DI_NOPERM_KEY_ID"))
H.NOPERM_KEY = env("DI_NOPERM_KEY")
H.OTHER_PROJECT = tonumber(env("DI_OTHER_PROJECT"))
H.TABLE = tonumber(env("DI_TABLE"))

H.json = cjson
H.null = cjson.null

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
H.q = sh_quote

local function readfile(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
H.readfile = readfile

local function writefile(p, s)
  local f = assert(io.open(p, "wb"))
  f:write(s)
  f:close()
end

-- curl(opts) -> result { status, headers, raw, body (BOM stripped), json, exit, http_version, time }
--   opts.url, opts.method ("POST"), opts.body (string or nil), opts.args (extra curl args)
function H.curl(opts)
  local bodyf, outf, hdrf = os.tmpname(), os.tmpname(), os.tmpname()
  local cmd = { "curl", "-sS", "--cacert", sh_quote(H.CA), "-o", sh_quote(outf), "-D", sh_quote(hdrf),
    "-w", sh_quote("%{http_code} %{http_version} %{time_total}"), "-H", sh_quote("Expect:"),
    "--max-time", tostring(opts.timeout or 30) }
  if opts.method then cmd[#cmd + 1] = "-X " .. opts.method end
  if opts.body then
    writefile(bodyf, opts.body)
    cmd[#cmd + 1] = "--data-binary @" .. sh_quote(bodyf)
  end
  for _, a in ipairs(opts.args or {}) do cmd[#cmd + 1] = a end
  cmd[#cmd + 1] = sh_quote(opts.url)
  local p = io.popen(table.concat(cmd, " ") .. " 2>/dev/null; echo \" $?\"")
  local out = p:read("a")
  p:close()
  local code, ver, t, exit = out:match("^(%d+) (%S+) (%S+)%s+(%d+)%s*$")
  local r = { status = tonumber(code) or 0, http_version = ver, time = tonumber(t), exit = tonumber(exit),
    raw = readfile(outf) or "", headers = {} }
  local hdr = readfile(hdrf) or ""
  for line in hdr:gmatch("[^\r\n]+") do
    if line:match("^HTTP/") then r.headers = {} end
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k then r.headers[k:lower()] = v end
  end
  os.remove(bodyf); os.remove(outf); os.remove(hdrf)
  r.body = r.raw:gsub("^\239\187\191", "")
  local ok, v = pcall(cjson.decode, r.body)
  if ok then r.json = v end
  return r
end

function H.auth(id, key)
  return { idKey = id or H.KEY_ID, Key = key or H.KEY }
end

-- api(service, method, body [, opts]) : body is a table (AuthKey added unless
-- body.AuthKey == false) or a raw string.
function H.api(service, method, body, opts)
  opts = opts or {}
  local raw = body
  if type(body) == "table" then
    if body.AuthKey == false then body.AuthKey = nil
    elseif body.AuthKey == nil then body.AuthKey = H.auth() end
    raw = cjson.encode(body)
  end
  local base = opts.http and H.HTTP_BASE or H.BASE
  local url = opts.url or (base .. service .. ".ashx?method=" .. method)
  local args = opts.args or {}
  if opts.http2 then args[#args + 1] = "--http2" end
  if opts.http1 then args[#args + 1] = "--http1.1" end
  if opts.content_type then args[#args + 1] = "-H " .. sh_quote("Content-Type: " .. opts.content_type)
  else args[#args + 1] = "-H 'Content-Type: application/json'" end
  return H.curl({ url = url, body = raw, args = args, method = opts.method, timeout = opts.timeout })
end

-- project-scoped call with the test key
function H.call(service, method, fields, opts)
  local body = { idProject = H.PROJECT }
  for k, v in pairs(fields or {}) do body[k] = v end
  return H.api(service, method, body, opts)
end

-- control(verb, path, body_table) -> decoded JSON (errors on non-JSON), result
function H.control(verb, path, body)
  local r = H.curl({ url = H.ROOT .. "_sandbox/" .. path, method = verb,
    body = body and cjson.encode(body) or nil })
  assert(r.json, "control " .. verb .. " " .. path .. " answered " .. r.status .. ": " .. r.raw)
  return r.json, r
end

function H.reset(opts)
  local j = H.control("POST", "reset", opts or {})
  assert(j.ok, "reset failed")
  return j
end

function H.log(since)
  local j = H.control("GET", "log" .. (since and ("?since=" .. since) or ""))
  return j.entries, j.last_seq
end

function H.faults(list) return H.control("POST", "faults", { faults = list }) end

function H.contact(email)
  local j = H.control("GET", "contact?email=" .. email)
  if j.contact == cjson.null then return nil end
  return j.contact
end

-- clause builders, with the exact shapes of docs/wire.md ("Clauses")
function H.fc(name, op, value)
  local c = { ["$type"] = "FieldClause", Field = { Name = name, TableCode = "Contact" }, TypeOperator = op }
  if value ~= nil then c.ComparisonValue = value end
  return c
end
function H.combo(op, ...)
  return { ["$type"] = "ComboClause", Operator = op, Clauses = { ... } }
end

-- merge(records, options) -> result
function H.merge(records, options, opts)
  return H.call("contacts", "Merge", { Records = records, MergeOptions = options }, opts)
end

function H.rec(email, data) return { ID = { key_f_EMail = email }, Data = data or {} } end

function H.get(clause, extra)
  local f = { Clause = clause }
  for k, v in pairs(extra or {}) do f[k] = v end
  return H.call("contacts", "Get", f)
end

-- assert an OK envelope and return the decoded body
function H.ok(r)
  assert(r.status == 200, "HTTP " .. tostring(r.status) .. ": " .. tostring(r.raw))
  assert(r.json, "not JSON: " .. tostring(r.raw))
  assert(r.json.Success == true, "Success is not true: " .. tostring(r.raw))
  return r.json
end

function H.emails(records)
  local out = {}
  for i, rec in ipairs(records) do out[i] = rec.f_EMail end
  table.sort(out)
  return out
end

return H
