-- The shared limiter in nginx: four workers of the example, each calling as
-- fast as its client lets it, share one 20 calls/s limit (burst 1).
local cjson = require "cjson"
local sbx = require "support.sandbox"
local H = require "nginx.helper"

describe("nginx shared limit", function()
  local inst, t

  setup(function()
    sbx.reset()
    local tport = H.free_port()
    inst = H.start_example("limit", { workers = 4, rate = 20, burst = 1, extra = table.concat({
      "lua_shared_dict burn 1m;",
      "init_worker_by_lua_block { dofile('@ROOT@/spec/nginx/burn.lua') }",
      "server {",
      "  listen 127.0.0.1:" .. tport .. ";",
      "  location /t/ { content_by_lua_file @ROOT@/spec/nginx/handler.lua; }",
      "}",
    }, "\n") })
    t = "http://127.0.0.1:" .. tport .. "/t/"
  end)

  teardown(function() if inst then inst.stop() end end)

  it("holds 4 workers to 20 calls/s together: 60 +- 3 calls in 3 s", function()
    local since = sbx.mark()
    assert.equal(200, (H.http(t .. "burn_start?seconds=3")))
    local r
    for _ = 1, 40 do -- the window opens 0.3 s after burn_start and lasts 3 s
      H.sh("sleep 0.25")
      local _, body = H.http(t .. "burn_result")
      r = cjson.decode(body)
      if r.done == 4 then break end
    end
    assert.equal(4, r.done, "not every worker finished: " .. cjson.encode(r))
    assert.equal(0, r.errors)
    local n = H.calls(since, "projects.list")
    local busy, per = 0, {}
    for _, w in ipairs(r.workers) do
      per[#per + 1] = string.format("%d", w.calls)
      if w.calls > 0 then busy = busy + 1 end
    end
    print(string.format("\n  4 workers, 20 calls/s burst 1, 3 s: %d calls in the sandbox log "
      .. "(per worker: %s)", n, table.concat(per, ", ")))
    assert.is_true(busy >= 2, "the load did not reach several workers")
    assert.is_true(n >= 57 and n <= 63, n .. " calls")
  end)
end)
