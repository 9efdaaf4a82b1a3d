-- The example's dashboard: /dashboard.json, and /dashboard rendered by a
-- real headless Chromium, checked against the rates the sandbox computes.
-- Leaves a screenshot in build/dashboard.png.
local cjson = require "cjson"
local sbx = require "support.sandbox"
local H = require "nginx.helper"

local CAMPAIGNS = { { id = 1, name = "Spring promo 2024" }, { id = 2, name = "Welcome series" } }

local function percent(part, whole)
  return string.format("%.1f%%", whole > 0 and part / whole * 100 or 0)
end

-- What the sandbox says, asked straight with curl (not through the library).
local function expected()
  local out = {}
  for i, c in ipairs(CAMPAIGNS) do
    local r = H.api("campaigns", "GetStatistics", { idCampaign = c.id })
    assert(r.Success, cjson.encode(r))
    local s = r.Statistics
    out[i] = { id = c.id, name = c.name, stats = s,
               open = percent(s.UniqueOpened, s.Delivered),
               click = percent(s.UniqueClicked, s.Delivered) }
  end
  return out
end

local function chromium(args)
  local profile = H.sh("mktemp -d"):match("%S+")
  local out, ok = H.sh("timeout 90 chromium --headless --no-sandbox --disable-gpu --no-first-run "
    .. "--disable-background-networking --disable-component-update --disable-sync "
    .. "--user-data-dir=" .. profile .. " " .. args .. " 2>/dev/null")
  H.sh("rm -rf " .. profile)
  return out, ok
end

describe("nginx dashboard", function()
  local inst

  setup(function()
    sbx.reset()
    -- the second campaign by its bare id: its name comes with its statistics
    local spec = { CAMPAIGNS[1].id .. "=" .. CAMPAIGNS[1].name, tostring(CAMPAIGNS[2].id) }
    inst = H.start_example("dashboard", { workers = 1, campaigns = table.concat(spec, ";") })
  end)

  teardown(function() if inst then inst.stop() end end)

  it("serves the rates as JSON", function()
    local want = expected()
    local status, r = H.get_json(inst.url .. "dashboard.json")
    assert.equal(200, status)
    assert.equal(0, r.failed)
    assert.equal(#want, #r.campaigns)
    for i, w in ipairs(want) do
      local c = r.campaigns[i]
      assert.equal(w.id, c.id)
      assert.equal(w.name, c.name)
      assert.equal(w.stats.Delivered, c.delivered)
      assert.near(w.stats.UniqueOpened / w.stats.Delivered, c.open_rate, 1e-9)
      assert.near(w.stats.UniqueClicked / w.stats.Delivered, c.click_rate, 1e-9)
    end
  end)

  it("renders in headless Chromium with the campaign names, the rates and an inline SVG chart", function()
    local want = expected()
    local status, html, headers = H.http(inst.url .. "dashboard")
    assert.equal(200, status)
    assert.truthy(headers:lower():find("content-type: text/html", 1, true))
    -- no external assets: nothing to fetch, no script
    assert.is_nil(html:find("<script", 1, true))
    assert.is_nil(html:find("<link", 1, true))
    assert.is_nil(html:find("src=", 1, true))

    local dom, ok = chromium("--dump-dom " .. inst.url .. "dashboard")
    assert.is_true(ok, dom)
    assert.truthy(dom:find("<h1>Campaign dashboard</h1>", 1, true), dom:sub(1, 500))
    for _, w in ipairs(want) do
      local row = dom:match('<tr data%-campaign="' .. w.id .. '">(.-)</tr>')
      assert.truthy(row, "no row for campaign " .. w.id)
      assert.equal(w.name, row:match('<td class="name">(.-)</td>'))
      assert.equal(w.open, row:match('<td class="open%-rate">(.-)</td>'))
      assert.equal(w.click, row:match('<td class="click%-rate">(.-)</td>'))
      -- the chart has both bars of the campaign, labelled with the same rates
      assert.truthy(dom:find('<rect class="bar open" data-campaign="' .. w.id .. '"', 1, true))
      assert.truthy(dom:find('<rect class="bar click" data-campaign="' .. w.id .. '"', 1, true))
      assert.truthy(dom:find(">" .. w.name .. ": open " .. w.open .. "<", 1, true))
    end
    assert.truthy(dom:find('<svg id="chart"', 1, true))

    local png = H.root .. "/build/dashboard.png"
    os.remove(png)
    local _, shot = chromium("--hide-scrollbars --window-size=960,680 --screenshot=" .. png
      .. " " .. inst.url .. "dashboard")
    assert.is_true(shot)
    local data = H.read(png)
    assert.equal("\137PNG", data:sub(1, 4))
    assert.is_true(#data > 10000, "the screenshot is suspiciously small")
  end)
end)
