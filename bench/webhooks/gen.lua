-- lua5.4 bench/webhooks/gen.lua PREFIX COUNT OUT: COUNT signed deliveries, one a line,
-- "<X-DI-Signature value> <body>", each with its own EventUniqueID PREFIX-<n> (the
-- receiver answers a repeated id as a duplicate). Signed by webhooks.sign with the
-- bench receiver's secret (HOOK_SECRET); core.encode writes no newline.
local webhooks = require "dialoginsight.webhooks"
local core = require "dialoginsight.core"
local prefix, count, out = arg[1], tonumber(arg[2]), arg[3]
assert(prefix and count and out, "usage: gen.lua PREFIX COUNT OUT")
local opts = { secret = assert(os.getenv("HOOK_SECRET"), "HOOK_SECRET is not set") }
local f = assert(io.open(out .. ".tmp", "wb"))
for i = 1, count do
  local body = assert(core.encode {
    Type = "contact_optout", EventUniqueID = prefix .. "-" .. i, idProject = 1001, idCompany = 5,
    ContactID = { idContact = 100000 + i }, f_EMail = "c" .. i .. "@example.com", isTest = false,
  })
  local header, sig = webhooks.sign(body, opts)
  assert(header == "X-DI-Signature" and not body:find("\n", 1, true))
  f:write(sig, " ", body, "\n")
end
f:close()
assert(os.rename(out .. ".tmp", out))
