--- The limiter's identity of an API host (limiter/shm.lua's file, limiter/redis.lua's
-- key): one spelling for every way a base URL can name it, so that they all share one
-- limit.  Lower case, less one trailing dot; an IP address as inet_ntop writes it
-- (127.1, 2130706433 and 0x7f.0.0.1 all reach 127.0.0.1 through curl); the port only
-- when not the scheme's default.  A canonical base URL keeps its file and key.
local M = {}

local DEFAULT_PORT = { http = 80, https = 443 }

-- One part of a numeric IPv4 address as inet_aton reads it (curl's and
-- glibc's reading): 0x hex, a leading 0 octal, else decimal; nil if none.
local function ipv4_part(p)
  local hex = p:match("^0[xX](%x*)$")
  if hex then return hex ~= "" and #hex <= 8 and tonumber(hex, 16) or nil end
  if p:match("^0[0-7]*$") then return #p <= 12 and tonumber(p, 8) or nil end
  if p:match("^[1-9]%d*$") then return #p <= 10 and tonumber(p) or nil end
  return nil
end

-- A dotted quad of host when inet_aton reads it as an IPv4 address, else nil.
local function ipv4(host)
  local parts = {}
  for p in (host .. "."):gmatch("([^.]*)%.") do parts[#parts + 1] = p end
  if #parts < 1 or #parts > 4 then return nil end
  local n = {}
  for i, p in ipairs(parts) do
    n[i] = ipv4_part(p)
    if not n[i] then return nil end
  end
  -- the last part fills the bytes the others leave
  local last = n[#n]
  if last >= 256 ^ (5 - #n) then return nil end
  for i = 1, #n - 1 do if n[i] > 255 then return nil end end
  local b = {}
  for i = 1, #n - 1 do b[i] = n[i] end
  for i = 4, #n, -1 do
    b[i] = last % 256
    last = (last - b[i]) / 256
  end
  return string.format("%d.%d.%d.%d", b[1], b[2], b[3], b[4])
end

-- The 8 groups of an IPv6 address (RFC 4291 text forms), or nil.
local function ipv6_groups(a)
  local head, tail = a:match("^(.-)::(.*)$")
  local function groups(s, out)
    if s == "" then return out end
    local parts = {}
    for g in (s .. ":"):gmatch("([^:]*):") do parts[#parts + 1] = g end
    for i, g in ipairs(parts) do
      if i == #parts and g:find(".", 1, true) then
        local q = g:match("^%d+%.%d+%.%d+%.%d+$") and ipv4(g)
        if not q or q ~= g:gsub("%f[%d]0+(%d)", "%1") then return nil end
        local x = {}
        for d in q:gmatch("%d+") do x[#x + 1] = tonumber(d) end
        out[#out + 1] = x[1] * 256 + x[2]
        out[#out + 1] = x[3] * 256 + x[4]
      elseif g:match("^%x%x?%x?%x?$") then
        out[#out + 1] = tonumber(g, 16)
      else
        return nil
      end
    end
    return out
  end
  if head then
    local h, t = groups(head, {}), groups(tail, {})
    if not h or not t or #h + #t > 7 then return nil end
    for _ = 1, 8 - #h - #t do h[#h + 1] = 0 end
    for _, g in ipairs(t) do h[#h + 1] = g end
    return h
  end
  local all = groups(a, {})
  return all and #all == 8 and all or nil
end

-- An IPv6 address as inet_ntop writes it (RFC 5952), or nil.
local function ipv6(a)
  local g = ipv6_groups(a)
  if not g then return nil end
  if g[1] == 0 and g[2] == 0 and g[3] == 0 and g[4] == 0 and g[5] == 0 and g[6] == 0xffff then
    return string.format("::ffff:%d.%d.%d.%d", math.floor(g[7] / 256), g[7] % 256,
      math.floor(g[8] / 256), g[8] % 256)
  end
  -- the longest run of two zero groups or more becomes ::, the first of equals
  local best, best_len, i = nil, 1, 1
  while i <= 8 do
    if g[i] == 0 then
      local j = i
      while j < 8 and g[j + 1] == 0 do j = j + 1 end
      if j - i + 1 > best_len then best, best_len = i, j - i + 1 end
      i = j + 1
    else
      i = i + 1
    end
  end
  local function hex(from, to)
    local t = {}
    for k = from, to do t[#t + 1] = string.format("%x", g[k]) end
    return table.concat(t, ":")
  end
  if not best then return hex(1, 8) end
  return hex(1, best - 1) .. "::" .. hex(best + best_len, 8)
end

--- The canonical spelling of a host (lower case, or the address as
-- inet_ntop writes it; an IPv6 address in brackets).
function M.host(host)
  host = host:lower()
  local v6 = host:match("^%[(.*)%]$")
  if v6 then
    local c = ipv6(v6)
    return c and "[" .. c .. "]" or host
  end
  if host:sub(-1) == "." and #host > 1 then host = host:sub(1, -2) end
  return ipv4(host) or host
end

--- "host" or "host:port" of base_url, canonical; "unknown" when base_url
-- names no host (config.lua refuses such a base_url first).
function M.of(base_url)
  local scheme, authority = tostring(base_url):match("^(%a+)://([^/?#]+)")
  if not scheme then return "unknown" end
  local host, port = authority:match("^(%[[^%]]*%]):?(%d*)$")
  if not host then host, port = authority:match("^([^:]+):?(%d*)$") end
  if not host then return authority:lower() end
  host = M.host(host)
  local n = tonumber(port)
  if n == nil or n == DEFAULT_PORT[scheme:lower()] then return host end
  return host .. ":" .. string.format("%d", n)
end

return M
