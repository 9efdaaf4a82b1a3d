-- wrk -t1 -s bench/webhooks/events.wrk.lua URL -- FILE: each request one line of FILE
-- (bench/webhooks/gen.lua: "<signature> <body>"), in order, formatted once at init; the
-- answers counted: 2xx, non-2xx, stored ("stored":true), duplicate ("duplicate":true).
-- After the last line it starts again (counted in wrapped: the receiver then answers
-- duplicates, which the driver reports). One thread only (-t1): the lines are not split.
-- luacheck: globals wrk setup init request response done ok non2xx stored duplicate wrapped
local reqs, n, i = {}, 0, 0
ok, non2xx, stored, duplicate, wrapped = 0, 0, 0, 0, 0

local threads = {}
function setup(thread) threads[#threads + 1] = thread end

function init(args)
  local f = assert(io.open(assert(args[1], "give the events file after --"), "rb"))
  for line in f:lines() do
    local sig, body = line:match("^(%x+) (.*)$")
    reqs[#reqs + 1] = wrk.format("POST", nil,
      { ["Content-Type"] = "application/json", ["X-DI-Signature"] = sig }, body)
  end
  f:close()
  n = #reqs
  assert(n > 0, "no events in " .. args[1])
end

function request()
  i = i + 1
  if i > n then i, wrapped = 1, wrapped + 1 end
  return reqs[i]
end

function response(status, _, body)
  if status >= 200 and status < 300 then ok = ok + 1 else non2xx = non2xx + 1 end
  if body:find('"stored":true', 1, true) then stored = stored + 1
  elseif body:find('"duplicate":true', 1, true) then duplicate = duplicate + 1 end
end

function done(summary)
  local t = { ok = 0, non2xx = 0, stored = 0, duplicate = 0, wrapped = 0 }
  for _, th in ipairs(threads) do
    for k in pairs(t) do t[k] = t[k] + th:get(k) end
  end
  io.write(string.format("hooks: requests=%d ok=%d non2xx=%d stored=%d duplicate=%d wrapped=%d "
    .. "errors=%d\n", summary.requests, t.ok, t.non2xx, t.stored, t.duplicate, t.wrapped,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status
    + summary.errors.timeout))
end
