-- luacheck (Debian's lua-check): `make lint`, part of `make test`.
-- The library runs under Lua 5.4 and LuaJIT (5.1 with extensions), so its
-- code may use what either has, guarded where they differ.
std = "lua54+luajit"
max_line_length = 140
-- `not (x > y)` is how NaN is refused (every comparison with NaN is false)
ignore = { "581" }
self = false                 -- methods need not use self
unused_args = true
allow_defined_top = false

-- OpenResty's API: the ngx transport, the Redis connector, nginx code
-- (ngx.status and ngx.header are assigned to, so it is a global, not read-only)
local NGX = { "ngx" }

files["lua/dialoginsight/transport/ngx.lua"] = { globals = NGX }
files["lua/dialoginsight/webhooks/ngx.lua"] = { globals = NGX }
files["lua/dialoginsight/limiter/*.lua"] = { globals = NGX }
files["lua/dialoginsight/init.lua"] = { globals = NGX }
files["lua/dialoginsight/metrics/ngx.lua"] = { globals = NGX }
-- the command's own modules run only in the Lua 5.4 host
files["lua/dialoginsight/cli"] = { std = "lua54" }
-- `dialoginsight run` gives scripts the globals client and di
files["examples/*.lua"] = { std = "lua54", read_globals = { "client", "di" } }
files["examples/openresty"] = { globals = NGX, max_line_length = 160 }
-- the sandbox's handlers share one signature (ctx, req), used or not
files["sandbox"] = { std = "luajit", globals = NGX, max_line_length = 160, unused_args = false }
files["sandbox/bench/merge.lua"] = { globals = { "wrk", "request", "done" } }
-- table-driven cases read best one per line
files["spec"] = { std = "+busted", max_line_length = false }
files["spec/nginx/handler.lua"] = { globals = NGX }
files["spec/nginx/burn.lua"] = { globals = NGX }
files["spec/nginx/events_app.lua"] = { globals = NGX }
files["spec/support/replay.lua"] = { read_globals = { "di" } }
files["spec/host/progress_spec.lua"] = { std = "lua54+busted" }
files["bench"] = { std = "lua54", max_line_length = 140 }
files["bench/seq/merge.wrk.lua"] = { globals = { "wrk", "done" } }
-- the libFuzzer harness (fuzz/harness.h) registers these
files["fuzz/lua"] = { std = "lua54", read_globals = { "fuzz_memfd", "fuzz_closefd" } }
