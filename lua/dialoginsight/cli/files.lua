--- Files the command writes whole: under a temporary name, then renamed over their
-- path, so that a reader (node_exporter, a fixture's user) never sees half of one.
local host = require "dialoginsight.host"

local M = {}

--- Writes text to path as a file of its own: created afresh (host.create: exclusive,
-- never through a link; 0600, or 0644 when readable), then renamed over path.  A path
-- that is a symbolic link is refused.  tmp: the temporary name (default path.tmp),
-- removed first (a file of ours left by a killed run; a link is only unlinked).
-- true, or nil, message.
function M.replace(path, text, readable, tmp)
  if host.islink(path) ~= false then return nil, path .. " is a symbolic link: not followed" end
  tmp = tmp or path .. ".tmp"
  os.remove(tmp)
  local f, err = host.create(tmp, readable)
  if not f then return nil, err end
  local ok
  ok, err = f:write(text)
  if ok then ok, err = f:close() else f:close() end
  if ok then ok, err = os.rename(tmp, path) end
  if not ok then os.remove(tmp); return nil, err end
  return true
end

return M
