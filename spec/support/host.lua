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
-- text, opts.pipe (a command piped into the host's stdin), opts.before
-- (shell words run first, e.g. "exec 3<>/dev/tcp/...  && "), opts.redirect
-- (extra redirections, e.g. "<&3"), opts.bash (run through bash, for
-- /dev/tcp), opts.cwd.  Returns { code, out, err }.
function M.run(args, opts)
  opts = opts or {}
  local out, err = M.TMP .. "/out", M.TMP .. "/err"
  local cmd = string.format("%s%s%s%s %s %s > %s 2> %s", opts.before or "", M.ENV,
    opts.env or "", M.BIN, args, opts.redirect or "", out, err)
  if opts.stdin then
    M.spit(M.TMP .. "/in", opts.stdin)
    cmd = cmd .. " < " .. M.TMP .. "/in"
  end
  if opts.pipe then cmd = opts.pipe .. " | " .. cmd end
  cmd = "cd " .. M.q(opts.cwd or M.ROOT) .. " && " .. cmd
  if opts.bash then cmd = "bash -c " .. M.q(cmd) end
  local ok, _, code = os.execute(cmd)
  if type(ok) == "number" then code = ok / 256 end -- Lua 5.1 returns the status
  return { code = code, out = M.slurp(out) or "", err = M.slurp(err) or "" }
end

--- Starts the host in the background (args as for run, outputs in files
-- named after name, env: a prefix as run's opts.env); returns a handle:
-- pid, and wait(secs) -> code, out, err.
function M.spawn(args, name, env)
  local base = M.TMP .. "/" .. name
  -- the files of an earlier spawn of this name go first: a pid file left by it would be
  -- read before the new one is written, and a Ctrl-C sent to that dead process (the
  -- ctrl-c property hung so, its first press lost, until its 30 s ran out)
  os.remove(base .. ".rc")
  os.remove(base .. ".pid")
  os.execute(string.format("cd %s && ( %s%s%s %s > %s.out 2> %s.err & echo $! > %s.pid; "
    .. "wait $!; echo $? > %s.rc ) > /dev/null 2>&1 &", M.q(M.ROOT), M.ENV, env or "", M.BIN, args,
    base, base, base, base))
  local h = { base = base }
  for _ = 1, 100 do
    h.pid = tonumber(M.slurp(base .. ".pid") or "")
    if h.pid then break end
    os.execute("sleep 0.05")
  end
  -- A background job of a non-interactive shell starts with SIGINT ignored, until the
  -- host's main takes it over: a Ctrl-C sent before that is lost (a loaded machine
  -- took over 50 ms to get there).  Wait until the host catches it (SigCgt, bit 1), or
  -- has already ended.
  for _ = 1, 200 do
    local status = h.pid and M.slurp("/proc/" .. h.pid .. "/status")
    if not status then break end
    local cgt = tonumber(status:match("SigCgt:%s*(%x+)") or "0", 16) or 0
    if cgt % 4 >= 2 then break end
    os.execute("sleep 0.01")
  end
  function h.wait(secs)
    for _ = 1, (secs or 60) * 10 do
      local rc = tonumber(M.slurp(base .. ".rc") or "")
      if rc then return rc, M.slurp(base .. ".out"), M.slurp(base .. ".err") end
      os.execute("sleep 0.1")
    end
    error("the host did not finish in time")
  end
  return h
end

--- The contacts the sandbox holds, by e-mail (its control API).
function M.contacts()
  return require("support.sandbox").control("GET", "state?contacts=1").contacts or {}
end

--- A contacts CSV of n rows: prefix1@example.com .. prefixN@example.com.
function M.csv_of(n, prefix)
  local lines = { "EMail,FirstName" }
  for i = 1, n do lines[#lines + 1] = string.format("%s%d@example.com,N%d", prefix, i, i) end
  return table.concat(lines, "\n") .. "\n"
end

--- Waits until the file at path holds pattern (or secs pass); returns its text.
function M.wait_for(path, pattern, secs)
  for _ = 1, (secs or 30) * 20 do
    local s = M.slurp(path) or ""
    if s:find(pattern) then return s end
    os.execute("sleep 0.05")
  end
  return M.slurp(path) or ""
end

return M
