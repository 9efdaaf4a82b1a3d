--- Support of the metrics specs (issue 25): the series of a snapshot (`client:metrics()`)
-- or of Prometheus text as { ["name{a=x,b=y}"] = value } (labels sorted), what changed
-- between two of them, promtool, and the attempts the sandbox's request log says were made.
local sbx = require "support.sandbox"

local M = {}

local function key(name, labels)
  local names = {}
  for k in pairs(labels) do names[#names + 1] = k end
  table.sort(names)
  local parts = {}
  for _, k in ipairs(names) do parts[#parts + 1] = k .. "=" .. labels[k] end
  return name .. "{" .. table.concat(parts, ",") .. "}"
end

--- Every series of a snapshot.
function M.index(snap)
  local t = {}
  for _, f in ipairs(snap.families) do
    for _, s in ipairs(f.samples) do t[key(s.name, s.labels)] = s.value end
  end
  return t
end

--- Every series of Prometheus text; raises on a line that is neither a comment nor a sample.
function M.parse(text)
  local t = {}
  for line in text:gmatch("[^\n]+") do
    if not line:match("^#") then
      local series, value = line:match("^(%S+) (%S+)$")
      assert(series, "a line promtool would refuse: " .. line)
      local name, body = series:match("^([%w_]+){(.*)}$")
      local labels = {}
      for k, v in (body or ""):gmatch('([%w_]+)="([^"]*)"') do labels[k] = v end
      t[key(name or series, labels)] = tonumber(value) or value
    end
  end
  return t
end

--- What changed in the series of family name (its samples: name, name_bucket, ...)
-- between two snapshots or parsed texts: { [series] = delta }, zeros left out.
function M.delta(before, after, name)
  if before.families then before, after = M.index(before), M.index(after) end
  local d = {}
  for k, v in pairs(after) do
    if k:sub(1, #name) == name and k:sub(#name + 1):match("^[%w_]*{") then
      local x = v - (before[k] or 0)
      if x ~= 0 then d[k] = x end
    end
  end
  return d
end

--- promtool (Debian's prometheus) on text: true, or false and what it said.
function M.promtool(text)
  local f = os.tmpname()
  local h = assert(io.open(f, "wb"))
  h:write(text)
  h:close()
  local out, ok = sbx.sh("promtool check metrics < " .. f)
  os.remove(f)
  return ok, out
end

--- The attempts the sandbox logged (`sbx.log` entries), as dialoginsight_attempts_total
-- series: the client saw no reply (code none) for a dropped connection (444) or a latency
-- fault past its timeout (the sandbox may log the status it then wrote to nobody).
-- lookup: the registry's (service, method) -> entry, for the names as the client counts them.
function M.attempts_of(entries, lookup)
  local want = {}
  for _, e in ipairs(entries) do
    local reg = assert(lookup(e.service, e.method))
    local outcome, code
    if e.status == 444 then
      outcome, code = "network", "none"
    elseif type(e.status) ~= "number" or tostring(e.fault or ""):match("^latency") then
      outcome, code = "timeout", "none"
    elseif e.status == 200 then
      outcome, code = "ok", "2xx"
    elseif e.status == 429 then
      outcome, code = "rate_limited", "4xx"
    else
      outcome, code = "http", math.floor(e.status / 100) .. "xx"
    end
    local k = key("dialoginsight_attempts_total",
      { code = code, method = reg.method, outcome = outcome, service = reg.service })
    want[k] = (want[k] or 0) + 1
  end
  return want
end

return M
