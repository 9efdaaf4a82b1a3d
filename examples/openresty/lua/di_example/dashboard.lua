--- GET /dashboard (HTML, with an inline SVG bar chart) and GET
-- /dashboard.json: open and click rates of the configured campaigns.
--
-- OFC4 cannot list campaigns (docs/wire.md), so the campaigns shown come from
-- configuration: app.init{ campaigns = "1=Spring promo 2024;2=Welcome series" },
-- filled from nginx.conf; a bare id ("1;2") is shown by the name its
-- statistics carry.  Their statistics are fetched concurrently (one
-- light thread per campaign) through client.campaigns:stats(id), which
-- gives open_rate = UniqueOpened / Delivered and click_rate =
-- UniqueClicked / Delivered.
local di = require "dialoginsight"
local app = require "di_example.app"

local M = {}

local function percent(rate)
  return string.format("%.1f%%", (rate or 0) * 100)
end
M.percent = percent

--- The rows of the dashboard, in configuration order, and the number of
-- campaigns whose statistics could not be read.
function M.rows()
  local client = app.client()
  local list = app.campaigns()
  local threads = {}
  for i, c in ipairs(list) do
    threads[i] = ngx.thread.spawn(function()
      return client.campaigns:stats(c.id)
    end)
  end
  local rows, failed = {}, 0
  for i, c in ipairs(list) do
    local ok, s, err = ngx.thread.wait(threads[i])
    local row = { id = c.id, name = c.name or (ok and s and s.name) or ("Campaign " .. c.id) }
    if ok and s then
      row.sent, row.delivered = s.Sent, s.Delivered
      row.unique_opened, row.unique_clicked = s.UniqueOpened, s.UniqueClicked
      row.open_rate, row.click_rate = s.open_rate, s.click_rate
    else
      failed = failed + 1
      row.error = ok and app.public_error(err) or { kind = "network", message = tostring(s) }
      ngx.log(ngx.ERR, "dashboard: campaign ", c.id, ": ", ok and tostring(err) or tostring(s))
    end
    rows[i] = row
  end
  return rows, failed
end

function M.json()
  local rows, failed = M.rows()
  local status = (#rows > 0 and failed == #rows) and 502 or 200
  return app.json(status, { campaigns = di.array(rows), failed = failed,
                            generated_at = ngx.http_time(ngx.time()) })
end

local ESC = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }
local function esc(s) return (tostring(s):gsub("[&<>\"']", ESC)) end

-- The chart: for each campaign, an open-rate bar and a click-rate bar, on a
-- 0..100% axis (0..max when every rate is small, so bars stay visible).
function M.svg(rows)
  local W, H = 720, 320
  local left, right, top, bottom = 56, 16, 40, 48
  local pw, ph = W - left - right, H - top - bottom
  local top_rate = 0
  for _, r in ipairs(rows) do
    top_rate = math.max(top_rate, r.open_rate or 0, r.click_rate or 0)
  end
  local scale = 1
  for _, s in ipairs { 0.1, 0.25, 0.5, 1 } do
    if top_rate <= s then scale = s; break end
  end
  local out = {}
  local function add(...) for i = 1, select("#", ...) do out[#out + 1] = select(i, ...) end end
  add(string.format('<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
    .. 'viewBox="0 0 %d %d" role="img" aria-label="Open and click rates per campaign">', W, H, W, H))
  add('<title>Open and click rates per campaign</title>')
  -- grid and axis labels
  for k = 0, 4 do
    local y = top + ph - ph * k / 4
    add(string.format('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e3e6ea"/>', left, y, W - right, y))
    add(string.format('<text x="%d" y="%.1f" font-size="12" text-anchor="end" fill="#555">%s</text>',
      left - 6, y + 4, (percent(scale * k / 4):gsub("%.0%%$", "%%"))))
  end
  add(string.format('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888"/>', left, top + ph, W - right, top + ph))
  -- legend
  add('<rect x="' .. left .. '" y="12" width="12" height="12" fill="#2f6fdf"/>')
  add('<text x="' .. (left + 18) .. '" y="22" font-size="13" fill="#222">Open rate</text>')
  add('<rect x="' .. (left + 110) .. '" y="12" width="12" height="12" fill="#f08c2e"/>')
  add('<text x="' .. (left + 128) .. '" y="22" font-size="13" fill="#222">Click rate</text>')
  local n = math.max(1, #rows)
  local gw = pw / n
  local bw = math.min(60, gw * 0.3)
  for i, r in ipairs(rows) do
    local gx = left + gw * (i - 1) + gw / 2
    for j, bar in ipairs { { "open", r.open_rate, "#2f6fdf" }, { "click", r.click_rate, "#f08c2e" } } do
      local v = bar[2] or 0
      local h = ph * math.min(1, v / scale)
      local x = gx + (j == 1 and -bw - 2 or 2)
      local y = top + ph - h
      add(string.format('<rect class="bar %s" data-campaign="%d" x="%.1f" y="%.1f" width="%.1f" '
        .. 'height="%.1f" fill="%s"><title>%s: %s %s</title></rect>', bar[1], r.id, x, y, bw, h,
        bar[3], esc(r.name), bar[1], percent(v)))
      add(string.format('<text x="%.1f" y="%.1f" font-size="12" text-anchor="middle" fill="#222">%s</text>',
        x + bw / 2, y - 4, r.error and "n/a" or percent(v)))
    end
    add(string.format('<text x="%.1f" y="%d" font-size="13" text-anchor="middle" fill="#222">%s</text>',
      gx, top + ph + 20, esc(r.name)))
    add(string.format('<text x="%.1f" y="%d" font-size="11" text-anchor="middle" fill="#777">#%d</text>',
      gx, top + ph + 36, r.id))
  end
  add('</svg>')
  return table.concat(out)
end

local PAGE = [[<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Campaign dashboard</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #222; background: #fafbfc; }
h1 { font-size: 22px; margin: 0 0 4px; }
p.meta { color: #666; margin: 0 0 16px; font-size: 13px; }
.card { background: #fff; border: 1px solid #e3e6ea; border-radius: 8px; padding: 16px; margin-bottom: 16px; width: fit-content; }
table { border-collapse: collapse; font-size: 14px; }
th, td { padding: 6px 12px; border-bottom: 1px solid #eceff3; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
td.error { color: #b00020; text-align: left; }
</style></head>
<body>
<h1>Campaign dashboard</h1>
<p class="meta">Open rate = unique opens / delivered; click rate = unique clicks / delivered. Updated %s.</p>
<div class="card">%s</div>
<div class="card"><table id="stats">
<thead><tr><th>Campaign</th><th>Sent</th><th>Delivered</th><th>Unique opens</th><th>Unique clicks</th><th>Open rate</th><th>Click rate</th></tr></thead>
<tbody>
%s</tbody></table></div>
</body></html>
]]

function M.html()
  local rows, failed = M.rows()
  local trs = {}
  for _, r in ipairs(rows) do
    if r.error then
      trs[#trs + 1] = string.format('<tr data-campaign="%d"><td class="name">%s</td>'
        .. '<td class="error" colspan="6">statistics unavailable: %s</td></tr>\n',
        r.id, esc(r.name), esc(r.error.message or r.error.kind))
    else
      trs[#trs + 1] = string.format('<tr data-campaign="%d"><td class="name">%s</td><td>%d</td>'
        .. '<td>%d</td><td>%d</td><td>%d</td><td class="open-rate">%s</td>'
        .. '<td class="click-rate">%s</td></tr>\n', r.id, esc(r.name), r.sent or 0,
        r.delivered or 0, r.unique_opened or 0, r.unique_clicked or 0,
        percent(r.open_rate), percent(r.click_rate))
    end
  end
  ngx.status = (#rows > 0 and failed == #rows) and 502 or 200
  ngx.header["Content-Type"] = "text/html; charset=utf-8"
  ngx.header["Cache-Control"] = "no-store"
  -- the page loads nothing from anywhere: no scripts, no external assets
  ngx.header["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
  ngx.print(string.format(PAGE, esc(ngx.http_time(ngx.time())), M.svg(rows), table.concat(trs)))
  return ngx.exit(ngx.HTTP_OK)
end

return M
