--- Shared by scenario 2's Lua contenders (call_many.lua, call_stream.lua, bare_multi.lua,
-- bare_list.lua): the settings from the environment, the client and the bare session
-- built alike, and the timed run.  The calls' params stay written out in each contender:
-- they are the measured work, built as a user would (a table constructor each).  Each
-- contender prints one line:
--   calls=N wall=SECONDS cpu=SECONDS
-- over BENCH_CALLS calls, after a warm-up run of 100 that opens the connections.
local core = require "dialoginsight.core"

local M = {}

M.n = tonumber(os.getenv("BENCH_CALLS") or "20000")
M.url = os.getenv("BENCH_URL")
M.key_id = tonumber(os.getenv("BENCH_KEY_ID"))
M.key = os.getenv("BENCH_KEY")
M.project = tonumber(os.getenv("BENCH_PROJECT"))
-- what the bare loops post to, and their body's AuthKey member
M.merge_url = M.url .. "contacts.ashx?method=Merge"
M.auth = { idKey = M.key_id, Key = M.key }

--- The client of the library's contenders: the shared limiter on at a rate far above the need.
function M.client(di)
  return di.new {
    key_id = M.key_id, key = M.key, project = M.project, base_url = M.url,
    ca_file = os.getenv("BENCH_CA"), allow_http = true, rate = 1e6, burst = 1e6,
    limiter_dir = os.getenv("BENCH_LIMITER_DIR"),
  }
end

--- The bare loops' session: the core's own HTTP handle with the client's options.
function M.session()
  return core.session { ca_file = os.getenv("BENCH_CA"), verify = true, timeout = 30,
    connect_timeout = 10, user_agent = "dialoginsight-lua/0.1", http2 = true,
    max_reply_bytes = 64 * 1024 * 1024 }
end

--- Runs run(100), then times run(M.n) (arg(n): what run takes for n calls, made before
-- the clock starts) and prints the line.
function M.timed(run, arg)
  run(arg(100))
  local a = arg(M.n)
  local t0, c0 = core.now(), os.clock()
  run(a)
  io.write(string.format("calls=%d wall=%.6f cpu=%.6f\n", M.n, core.now() - t0, os.clock() - c0))
end

return M
