--- Where a sync's outputs go (docs/sync.md, "Where the files go"), checked before
-- anything is read or written: no output may be the input or the other output,
-- however spelled (host.fileid compares the files), nor a symbolic link.  A
-- stream or a descriptor's name (/dev/stdin, /proc/self/fd/N) cannot be read again
-- by a later run: --resume is refused.
local host = require "dialoginsight.host"

local M = {}

local function dir_of(path)
  return path:match("^(.*[^/])/+[^/]*$") or (path:match("^/") and "/") or "."
end

local function base_of(path)
  return path:match("([^/]+)/*$") or path
end

local function device_of(id)
  return id and id:match("^inode:(%-?%d+):")
end

-- Whether path is the name of a descriptor: in /dev or /dev/fd, or on the
-- proc file system.
local function descriptor_name(path)
  local dir = host.fileid(dir_of(path))
  if not dir then return false end
  if dir == host.fileid("/dev") or dir == host.fileid("/dev/fd") then return true end
  local proc = device_of(host.fileid("/proc"))
  return proc ~= nil and device_of(dir) == proc
end

-- The identity of the output at path (what: "rejects file", "journal"), or nil, message.
local function output_id(path, what)
  local id, kind = host.fileid(path)
  if not id then return nil, "the " .. what .. " " .. tostring(kind) end
  if kind ~= "none" and kind ~= "file" then
    return nil, "the " .. what .. " " .. path .. " is a " .. kind .. ", not a regular file"
  end
  return id
end

--- The outputs of a sync of opts.file: { journal =, rejects =, stream = true when the
-- input cannot be resumed }, or nil, message.
function M.resolve(opts)
  local file = opts.file
  local id, kind = host.fileid(file)
  if not id then return nil, tostring(kind) end
  if kind == "none" then return nil, file .. ": No such file or directory" end
  if kind == "directory" then return nil, file .. ": Is a directory" end
  local stream = kind ~= "file" or descriptor_name(file)
  local stem = stream and base_of(file) or file
  if opts.out_dir then
    local _, dkind = host.fileid(opts.out_dir)
    if dkind ~= "directory" then
      return nil, "--out-dir " .. opts.out_dir .. ": " .. (dkind == "none" and "No such directory"
        or dkind and ("a " .. dkind .. ", not a directory") or "cannot be read")
    end
    stem = opts.out_dir:gsub("/+$", "") .. "/" .. base_of(file)
  end
  local p = { journal = stem .. ".di-journal", rejects = opts.rejects or (stem .. ".rejects.csv"),
              state = opts.state or (stem .. ".di-state"), stream = stream }
  if stream and opts.resume then
    return nil, file .. " is a stream (" .. (kind == "file" and "a descriptor's name" or "a " .. kind)
      .. "), which a later run cannot read again: --resume is refused; sync it again from the "
      .. "start with --restart, or save it to a file and sync that"
  end
  local seen = { [id] = "the input " .. file }
  -- the state's own files beside it (SQLite's): FILE.csv.di's rollback journal would be the
  -- sync's journal
  local outs = { { p.rejects, "rejects file" }, { p.journal, "journal" }, { p.state, "sync state" },
                 { p.state .. "-journal", "sync state's SQLite journal" },
                 { p.state .. "-wal", "sync state's SQLite log" }, { p.state .. "-shm", "sync state's SQLite index" } }
  for _, name in ipairs { "plan_out", "missing_out" } do
    if opts[name] then outs[#outs + 1] = { opts[name], "--" .. name:gsub("_", "-") .. " file" } end
  end
  for _, out in ipairs(outs) do
    local oid, why = output_id(out[1], out[2])
    if not oid then return nil, why end
    if seen[oid] then
      return nil, "the " .. out[2] .. " " .. out[1] .. " is the same file as " .. seen[oid]
        .. ": refusing to overwrite it (choose another --rejects path or --out-dir)"
    end
    seen[oid] = "the " .. out[2] .. " " .. out[1]
  end
  -- they hold contact data and are cut back: never written through a link
  -- someone planted (cli/sync/output.lua opens them O_NOFOLLOW)
  for _, out in ipairs(outs) do
    if host.islink(out[1]) then
      return nil, "the " .. out[2] .. " " .. out[1] .. " is a symbolic link: not followed "
        .. "(remove it, or choose another --rejects path or --out-dir)"
    end
  end
  return p
end

return M
