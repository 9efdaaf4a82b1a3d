-- Load (issue 9): the sandbox limits the key to 300 calls/s while the client
-- is configured for 1,000/s.  The client must converge to the server's limit
-- through its 429 handling (the shared limiter penalized by Retry-After, the
-- process's own rate lowered, see limiter.lua), without collapsing far below
-- it, and lose nothing: every record merged, exact counts in the sandbox.
local sbx = require "support.sandbox"
local di = require "dialoginsight"
local core = require "dialoginsight.core"

local SERVER_RATE, SERVER_BURST, CLIENT_RATE = 300, 30, 1000
local CALLS, PER_CALL = 3000, 2

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -m 700 " .. d))
  return d
end

describe("load: client at 1,000/s, server at 300/s", function()
  after_each(function() sbx.reset() end)

  it("converges to the server's limit through 429s and loses nothing", function()
    sbx.reset { seed = 3 }
    sbx.control("POST", "ratelimit", { rate = SERVER_RATE, burst = SERVER_BURST })
    local c = di.new(sbx.settings { rate = CLIENT_RATE, burst = 100, limiter_dir = tmpdir(),
                                    retries = { retries = 30, cap = 2 } })
    local penalties, t0 = 0, core.now()
    local penalize = c.limiter.penalize
    c.limiter.penalize = function(self, s) penalties = penalties + 1; return penalize(self, s) end
    local mark = sbx.mark()

    -- CALLS Merge calls of PER_CALL records each, streamed, 16 in flight
    local n, finished, failures, created = 0, {}, 0, 0
    c:call_stream(function()
      if n == CALLS then return nil end
      n = n + 1
      local recs = {}
      for k = 1, PER_CALL do
        local i = (n - 1) * PER_CALL + k
        recs[k] = { ID = { key_f_EMail = string.format("load%06d@example.com", i) },
                    Data = { f_Points = i, f_City = "City " .. i } }
      end
      return { "contacts", "Merge", { Records = recs } }
    end, function(i, r)
      finished[#finished + 1] = core.now()
      if di.is_error(r) then failures = failures + 1 else created = created + r.CreatedRecords end
      assert(i)
    end, { concurrency = 16 })
    local elapsed = core.now() - t0

    -- nothing lost
    assert.are.equal(0, failures)
    assert.are.equal(CALLS * PER_CALL, created)
    local state = sbx.control("GET", "state?contacts=1")
    local have, extra = state.contacts, 0
    for i = 1, CALLS * PER_CALL do
      local e = string.format("load%06d@example.com", i)
      local got = have[e]
      assert(got, "missing " .. e)
      assert.are.equal(i, got.f_Points)
      assert.are.equal("City " .. i, got.f_City)
    end
    for e in pairs(have) do if e:match("^load") then extra = extra + 1 end end
    assert.are.equal(CALLS * PER_CALL, extra)

    -- the server saw every call once successfully; the rest were 429s
    local ok, limited, other = 0, 0, 0
    for _, e in ipairs(sbx.log(mark)) do
      if e.status == 200 then ok = ok + 1 elseif e.status == 429 then limited = limited + 1
      else other = other + 1 end
    end
    assert.are.equal(CALLS, ok)
    assert.are.equal(0, other)
    assert.truthy(limited > 0, "the server never said 429")
    assert.truthy(penalties > 0, "the shared limiter was never penalized")
    assert.truthy(c.limiter.rate < CLIENT_RATE, "the client's rate did not come down")

    -- the achieved rate: overall, and over the second half of the calls
    -- (after convergence); it must neither collapse nor beat the server
    local overall = CALLS / elapsed
    local half = math.floor(CALLS / 2)
    local steady = (CALLS - half) / (finished[CALLS] - finished[half])
    print(string.format("\nload: %d calls in %.2f s: %.0f calls/s overall, %.0f calls/s over the "
      .. "second half; %d 429s, %d penalties; client rate now %.0f/s (configured %d, server %d)",
      CALLS, elapsed, overall, steady, limited, penalties, c.limiter.rate, CLIENT_RATE, SERVER_RATE))
    assert.truthy(overall >= 0.6 * SERVER_RATE, "overall rate collapsed: " .. overall)
    assert.truthy(steady >= 0.8 * SERVER_RATE, "steady rate collapsed: " .. steady)
    assert.truthy(steady <= 1.1 * SERVER_RATE, "faster than the server allows: " .. steady)
    assert.truthy(c.limiter.rate >= 0.7 * SERVER_RATE and c.limiter.rate <= 1.3 * SERVER_RATE,
      "the client's rate is " .. c.limiter.rate)
  end)
end)
