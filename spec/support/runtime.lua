--- The interpreter running this spec, as a command: workers spawned by a spec
-- (limiter, Redis, TLS warnings) must load the same core.so as the spec
-- itself, which scripts/test builds once per runtime (build/<runtime>/).
local by_version = { ["Lua 5.1"] = "lua5.1", ["Lua 5.4"] = "lua5.4" }

local M = {}

M.lua = (jit and "luajit") or by_version[_VERSION]
  or error("spec/support/runtime.lua: no command known for " .. _VERSION)

return M
