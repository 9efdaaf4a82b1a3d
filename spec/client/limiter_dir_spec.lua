-- Several users, one limit (issue 13): a group-shared limiter_dir that nginx
-- workers and a cron job of another user share, and the directories and
-- files the limiter refuses (src/di_limiter_file.c).  It creates two users
-- and a group, so it must run as root; it removes them afterwards.
local di = require "dialoginsight"
local core = require "dialoginsight.core"
local shm = require "dialoginsight.limiter.shm"
local sbx = require "support.sandbox"

local LUA = require("support.runtime").lua

-- Runs a shell command that must succeed; returns its output, trimmed.
local function sh(cmd)
  local out, ok = sbx.sh(cmd)
  assert(ok, cmd .. " failed: " .. out)
  return (out:gsub("%s+$", ""))
end

-- The error di.new raises for limiter_dir = dir (it must raise).
local function refusal(dir)
  local ok, err = pcall(di.new, sbx.settings { limiter_dir = dir })
  assert.is_false(ok, "limiter_dir " .. dir .. " was accepted")
  err = tostring(err)
  assert.truthy(err:find("setting 'limiter_dir'", 1, true), err)
  return err
end

-- The limiter file of the sandbox's key in dir.
local function file_in(dir)
  local s = sbx.settings()
  return shm.path(dir, s.base_url, s.key_id)
end

-- Runs spec/support/limiter_worker.lua once per prefix (a command such as
-- "setpriv ... sh -c", run with umask 077) at the same moment, for secs
-- seconds; returns the calls of each.
local function run_as(prefixes, secs, rate, burst, dir)
  -- the window opens once both workers are up: starting another user's Lua
  -- took over a second on a loaded machine (one user then made no call)
  local start = core.now() + 3
  local files, procs, per = {}, {}, {}
  for i, prefix in ipairs(prefixes) do
    files[i] = os.tmpname()
    local cmd = string.format("umask 077; DI_WORKER_DECISIONS=1 exec %s spec/support/limiter_worker.lua %.6f %.6f %s %s %s",
      LUA, start, start + secs, rate, burst, dir)
    procs[i] = io.popen(string.format("%s %q > %q 2>&1; echo \"EXIT=$?\" >> %q", prefix, cmd,
      files[i], files[i]))
  end
  for i = 1, #prefixes do
    procs[i]:close()
    local text = io.open(files[i]):read("*a")
    os.remove(files[i])
    assert(text:match("EXIT=0%s*$"), "worker " .. i .. " failed: " .. text)
    per[i] = select(2, text:gsub("%d+%.%d+\n", ""))
    per.decisions = per.decisions or {}
    per.decisions[i] = tonumber(text:match("decisions (%d+)")) or 0
  end
  return per
end

describe("limiter_dir", function()
  local suffix, group, users, base

  setup(function()
    assert(sh("id -u") == "0", "this spec creates users and a group: run it as root")
    suffix = sh("od -An -N4 -tx4 /dev/urandom"):gsub("%s", "")
    group, users = "digrp" .. suffix, { "dia" .. suffix, "dib" .. suffix }
    sh("groupadd " .. group)
    for _, u in ipairs(users) do
      sh("useradd -M -N -s /usr/sbin/nologin -G " .. group .. " " .. u)
    end
    base = sh("mktemp -d")
    sh("chmod 755 " .. base) -- the two users must reach the shared directory
  end)

  teardown(function()
    for _, u in ipairs(users or {}) do sbx.sh("userdel " .. u) end
    if group then sbx.sh("groupdel " .. group) end
    if base then sbx.sh("rm -rf " .. base) end
  end)

  before_each(function() sbx.reset() end)

  it("group-shared (setgid 2770): two users share one limit, files 0660 under umask 077", function()
    -- owned by the first user: the second one accepts it as group-shared
    local dir = base .. "/shared"
    sh(string.format("install -d -m 2770 -o %s -g %s %s", users[1], group, dir))
    local prefixes = {}
    for i, u in ipairs(users) do
      prefixes[i] = string.format("setpriv --reuid=%s --regid=%s --init-groups sh -c", u,
        sh("id -g " .. u))
    end
    local mark = sbx.mark()
    local per = run_as(prefixes, 3, 20, 1, dir)
    local total = per[1] + per[2]
    print(string.format("\n  two users, 20 calls/s burst 1, 3 s: %d + %d calls", per[1], per[2]))
    -- each user asked the shared limit (the limiter does not promise each
    -- sharer a share: on a loaded machine one user may be held throughout)
    assert.is_true(per.decisions[1] > 0 and per.decisions[2] > 0, "a user never asked the limiter")
    assert.is_true(total >= 57 and total <= 63, total .. " calls in 3 s (one limit: 60)")
    assert.equal(total, #sbx.log(mark))
    local mode, grp, owner = sh("stat -c '%a %G %U' " .. file_in(dir)):match("(%S+) (%S+) (%S+)")
    assert.equal("660", mode)
    assert.equal(group, grp)
    assert.truthy(owner == users[1] or owner == users[2], owner)
    -- and root (nginx's master) opens another user's file in it too
    local c = di.new(sbx.settings { limiter_dir = dir })
    assert(c:call("projects", "List", {}))
  end)

  it("refuses a world-writable directory, even sticky (/tmp's kind)", function()
    local dir = base .. "/ww"
    sh("mkdir -m 1777 " .. dir)
    local err = refusal(dir)
    assert.truthy(err:find(dir .. " is world-writable", 1, true), err)
  end)

  it("refuses a symbolic link for the directory and for the file", function()
    local own = base .. "/own"
    sh("mkdir -m 700 " .. own)
    sh(string.format("ln -s %s %s/link", own, base))
    local err = refusal(base .. "/link")
    assert.truthy(err:find(base .. "/link is a symbolic link", 1, true), err)

    local target = base .. "/target"
    sh("touch " .. target)
    sh(string.format("ln -s %s %q", target, file_in(own)))
    err = refusal(own)
    assert.truthy(err:find("limiter file " .. file_in(own) .. " is a symbolic link", 1, true), err)
    assert.equal("0", sh("stat -c %s " .. target), "the link's target was written")
  end)

  it("refuses another user's directory or file, unless group-shared and closed", function()
    -- a private directory of another user
    local theirs = base .. "/theirs"
    sh(string.format("install -d -m 700 -o %s %s", users[1], theirs))
    local err = refusal(theirs)
    assert.truthy(err:find(theirs .. " belongs to another user", 1, true), err)

    -- another user's setgid directory still open to others
    local open = base .. "/open"
    sh(string.format("install -d -m 2775 -o %s -g %s %s", users[1], group, open))
    err = refusal(open)
    assert.truthy(err:find(open .. " belongs to another user", 1, true), err)

    -- another user's file in our own (not shared) directory
    local own = base .. "/own2"
    sh("mkdir -m 755 " .. own)
    assert(di.new(sbx.settings { limiter_dir = own })):close()
    sh(string.format("chown %s %q", users[1], file_in(own)))
    err = refusal(own)
    assert.truthy(err:find("limiter file " .. file_in(own) .. " belongs to another user", 1, true),
      err)

    -- in a group-shared directory: another user's file of another group, or
    -- open to others
    local shared = base .. "/shared2"
    sh(string.format("install -d -m 2770 -g %s %s", group, shared))
    assert(di.new(sbx.settings { limiter_dir = shared })):close()
    sh(string.format("chown %s:users %q", users[1], file_in(shared)))
    refusal(shared)
    sh(string.format("chown %s:%s %q && chmod 664 %q", users[1], group, file_in(shared),
      file_in(shared)))
    refusal(shared)
    sh(string.format("chmod 660 %q", file_in(shared)))
    assert(di.new(sbx.settings { limiter_dir = shared })):close()
  end)
end)
