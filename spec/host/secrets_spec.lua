-- The API key never leaves the process: every command of the host and every
-- example, with --trace and the debug hooks on, succeeding and failing, and
-- every file they and the sandbox write.  Zero hits allowed.
local sbx = require "support.sandbox"
local H = require "support.host"
local q, slurp, spit, run = H.q, H.slurp, H.spit, H.run

describe("the key", function()
  local key = sbx.env("DI_KEY")
  local texts, names = {}, {}
  local function keep(name, text)
    if text then texts[#texts + 1], names[#names + 1] = text, name end
  end
  local function host(name, args, opts)
    local r = run("--trace " .. args, opts)
    keep(name .. " stdout", r.out)
    keep(name .. " stderr", r.err)
    return r
  end

  setup(function() sbx.reset() end)
  teardown(function() sbx.clear_faults() end)

  it("is refused on the command line in any form, and never echoed (issue 13)", function()
    local csv = H.TMP .. "/argv.csv"
    spit(csv, "EMail\nann@example.com\n")
    local hex = "0123456789abcdef0123456789abcdef" -- looks like a key, configured or not
    local conf = H.TMP .. "/argv.conf"
    spit(conf, "key = " .. hex .. "\n")
    for _, c in ipairs {
      { "sync contacts " .. q(csv) .. " --key " .. q(key) },
      { "sync contacts " .. q(csv) .. " --key=" .. q(key) },
      { "sync contacts " .. q(csv) .. " --key " .. hex, hex },
      { "sync contacts " .. q(csv) .. " --key=" .. hex, hex },
      { "sync contacts " .. q(csv) .. " --map " .. q("EMail=" .. key) },
      { "call projects List " .. q(key) },
      { "run " .. q(csv) .. " " .. q(key) },
      { q(key) },
      { hex, hex },
      { "--config " .. q(conf) .. " call projects List " .. hex, hex },
    } do
      local r = host("argv " .. c[1], c[1])
      assert.are.equal(64, r.code, c[1] .. ": " .. r.err)
      assert.falsy((r.out .. r.err):find(c[2] or key, 1, true), c[1] .. ": " .. r.err)
    end
  end)

  it("never shows the key when it lands in the wrong setting (issue 13)", function()
    local conf = H.TMP .. "/swapped.conf"
    for _, c in ipairs {
      { env = "DI_KEY_ID=" .. q(key) .. " DI_KEY=" .. q(sbx.env("DI_KEY_ID")) .. " " },
      { env = "DI_PROJECT=" .. q(key) .. " " },
      { env = "DI_CA_FILE=" .. q(key) .. " " },
      { env = "DI_LIMITER_DIR=" .. q(key) .. " " },
      { env = "DI_BASE_URL=" .. q(key) .. " " },
      { env = "DI_RATE=" .. q(key) .. " " },
      { file = "key_id = " .. key },
      { file = "project = \"" .. key .. "\"" },
      { file = "user_agent = " .. key },
      { file = "region = " .. key .. " # a comment" },
    } do
      local args = "check"
      if c.file then
        spit(conf, c.file .. "\n")
        os.execute("chmod 600 " .. q(conf))
        args = "--config " .. q(conf) .. " check"
      end
      local r = host("wrong setting " .. (c.env or c.file), args, { env = c.env })
      assert.are.equal(1, r.code, (c.env or c.file) .. ": " .. r.out .. r.err)
      assert.truthy(r.err:find("configuration", 1, true) or r.err:find("DI_RATE", 1, true), r.err)
    end
  end)

  it("is absent from every output and file of every command and example", function()
    local dir = H.TMP .. "/secrets"
    os.execute("mkdir -p " .. q(dir))
    local csv = dir .. "/in.csv"
    spit(csv, "EMail,FirstName,Points,BirthDate\n"
      .. "ann@example.com,Ann,3,1990-01-02\n"
      .. "bob@example.com,Bob,many,1990-01-02\n"           -- a rejected row
      .. "\"cy@example.com,Cy,1\n")                          -- an unterminated quote
    -- a script that turns on every debug hook the library has
    spit(dir .. "/hooks.lua", [[
      client.on_call = function(ev) io.stderr:write("call ", ev.service, ".", ev.method, " ", tostring(ev.status), "\n") end
      client.on_retry = function(ev) io.stderr:write("retry ", tostring(ev.error), "\n") end
      client.on_wait = function(ev) io.stderr:write("wait ", ev.delay, "\n") end
      print(client)
      local r, err = client:call("contacts", "Merge", { Records = { { ID = { key_f_EMail = "h@example.com" }, Data = { f_City = "\255" } } } })
      print(tostring(err))
      r, err = client:call("contacts", "NoSuchMethod", {})
      print(tostring(err))
      for k, v in pairs(err) do print(k, v) end
      error("a failing script, with a traceback")
    ]])

    for _, c in ipairs {
      "--help", "run --help", "check --help", "fields --help", "call --help",
      "sync --help", "export --help", "stats --help",
      "check", "fields", "call projects List", "stats 1", "stats 999999",
      "call contacts NoSuchMethod", "call contacts Get 'not json'",
      "sync contacts " .. q(csv), "sync contacts " .. q(csv) .. " --dry-run",
      "export contacts", "export contacts --where City=Paris",
      "run " .. q(dir .. "/hooks.lua"), "no-such-command",
    } do
      host(c, c)
    end
    -- the same through faults: retries, give-ups, a timeout
    sbx.faults { { type = "status", status = 503, probability = 0.5 } }
    host("check under 503s", "check")
    host("sync under 503s", "sync contacts " .. q(csv) .. " --restart")
    sbx.clear_faults()
    sbx.faults { { type = "latency", ms = 1500, next = 3 } }
    host("check timing out", "check", { env = "DI_TIMEOUT=0.3 " })
    sbx.clear_faults()
    -- wrong credentials, and a config file holding the key
    host("wrong key", "check", { env = "DI_KEY=wrong-key-0123456789 " })
    local conf = dir .. "/di.conf"
    spit(conf, string.format("key_id = %s\nkey = %s\nproject = %s\nbase_url = %s\nca_file = %s\n",
      sbx.env("DI_KEY_ID"), key, sbx.env("DI_PROJECT"), sbx.env("DI_BASE_URL"), sbx.env("DI_CA_FILE")))
    os.execute("chmod 644 " .. q(conf)) -- readable by others: the host warns
    host("config file", "--config " .. q(conf) .. " check",
      { env = "env -u DI_KEY -u DI_KEY_ID " })
    -- every example
    for _, ex in ipairs { "quickstart", "newsletter", "crm_sync", "abandoned_cart", "abandoned_cart_send",
                          "dashboard", "dashboard --demo" } do
      local name, args = ex:match("^(%S+)(.*)$")
      host(ex, "run " .. q(H.ROOT .. "/examples/" .. name .. ".lua") .. args)
    end

    -- the files: journals, rejects, and the sandbox's own logs
    for _, f in ipairs { csv .. ".di-journal", csv .. ".rejects.csv" } do
      keep(f, slurp(f))
    end
    local logs = sbx.env("DI_CA_FILE"):gsub("/tls/[^/]+$", "/logs")
    for _, f in ipairs { "error.log", "access.log" } do keep(logs .. "/" .. f, slurp(logs .. "/" .. f)) end
    keep("request log", require("cjson").encode(sbx.log()))

    assert.is_true(#texts > 60, #texts .. " texts scanned")
    local traced = false
    for i, text in ipairs(texts) do
      assert.falsy(text:find(key, 1, true), "the key is in " .. names[i])
      assert.falsy(text:find("wrong-key-0123456789", 1, true), "a wrong key is in " .. names[i])
      if text:find("contacts.Merge", 1, true) then traced = true end
    end
    assert.is_true(traced, "--trace must have logged the calls")
  end)
end)
