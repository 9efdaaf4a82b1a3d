--- The interpreter running this spec, as a command: workers spawned by a spec
-- (limiter, Redis, TLS warnings) must load the same modules and core.so as
-- the spec itself, which scripts/test builds once per runtime
-- (build/<runtime>/).  The command carries the spec's own package.path and
-- package.cpath (made absolute), since busted may have set them from
-- .busted rather than from LUA_PATH, which a child would not see.
local by_version = { ["Lua 5.1"] = "lua5.1", ["Lua 5.4"] = "lua5.4" }

local M = {}

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local cwd = os.getenv("PWD") or "."
local function absolute(path)
  return (path:gsub("[^;]+", function(p)
    if p:sub(1, 1) ~= "/" then return cwd .. "/" .. p:gsub("^%./", "") end
  end))
end

M.bin = (jit and "luajit") or by_version[_VERSION]
  or error("spec/support/runtime.lua: no command known for " .. _VERSION)

M.lua = "env LUA_PATH=" .. q(absolute(package.path)) .. " LUA_CPATH=" .. q(absolute(package.cpath))
  .. " " .. M.bin

return M
