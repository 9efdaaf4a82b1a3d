--- Where the library's warnings go: nginx's error log inside nginx, else
-- stderr.  Every layer warns through here.
-- @module dialoginsight.log
local M = {}

--- Writes msg, a whole line without its newline, as a warning.
-- @tparam string msg
function M.warn(msg)
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and ngx.log and ngx.WARN then
    ngx.log(ngx.WARN, msg)
  else
    io.stderr:write(msg, "\n")
  end
end

return M
