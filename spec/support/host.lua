--- Test support: running the bundled host, bin/dialoginsight, as a user
-- would, from a shell, with its outputs in files.
local M = {}

M.ROOT = assert(io.popen("pwd")):read("*l")
-- DI_HOST_BIN: check-asan points this at the sanitizer build
M.BIN = os.getenv("DI_HOST_BIN") or (M.ROOT .. "/bin/dialoginsight")
M.TMP = os.tmpname()
os.remove(M.TMP)
assert(os.execute("mkdir -p " .. M.TMP))

-- The limiter stays on, well above what the specs need.
M.ENV = "DI_RATE=2000 DI_BURST=200 "

--- Quotes s for the shell.
function M.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

function M.slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

function M.spit(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

--- Runs the host: args is a shell-quoted string; opts.env prefix, opts.stdin
-- text, opts.cwd.  Returns { code, out, err }.
function M.run(args, opts)
  opts = opts or {}
  local out, err = M.TMP .. "/out", M.TMP .. "/err"
  local cmd = string.format("cd %s && %s%s %s %s > %s 2> %s", M.q(opts.cwd or M.ROOT),
    M.ENV, opts.env or "", M.BIN, args, out, err)
  if opts.stdin then
    M.spit(M.TMP .. "/in", opts.stdin)
    cmd = cmd .. " < " .. M.TMP .. "/in"
  end
  local ok, _, code = os.execute(cmd)
  if type(ok) == "number" then code = ok / 256 end -- Lua 5.1 returns the status
  return { code = code, out = M.slurp(out) or "", err = M.slurp(err) or "" }
end

return M
