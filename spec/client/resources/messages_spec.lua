-- client.messages against the sandbox.
local sbx = require "support.sandbox"
local H = require "client.resources.common"

describe("messages", function()
  local c
  before_each(function()
    sbx.reset()
    c = H.client()
  end)

  local M = { name = "Spec message", subject = "Hello", sender_email = "news@example.com",
              sender_name = "News", html = "<p>Hi</p>", text = "Hi" }

  it("create returns an id that get reads back", function()
    local id = assert(c.messages:create(M))
    assert.is_number(id)
    local m = assert(c.messages:get(id))
    assert.equal("Spec message", m.Name)
    local v = m.MessageVersions[1]
    assert.equal("Hello", v.Subject)
    assert.equal("news@example.com", v.SenderEMail)
    assert.equal("News", v.SenderName)
    assert.equal(2, #v.MessageBodies)
    assert.equal("text/html", v.MessageBodies[1].MIMEType)
    assert.equal("<p>Hi</p>", v.MessageBodies[1].Content)
    assert.equal("text/plain", v.MessageBodies[2].MIMEType)
  end)

  it("create validates before sending", function()
    local mark = sbx.mark()
    local r, err = c.messages:create { name = "x", subject = string.rep("s", 101) }
    assert.is_nil(r)
    H.invalid(err, { "sender_email", "html", "subject" })
    assert.equal(0, #H.calls(mark, "messages.create"))
  end)

  it("returns API errors", function()
    local r, err = c.messages:get(9999)
    assert.is_nil(r)
    assert.equal("api", err.kind)
    assert.equal("InvalidParameter", err.code)
    r, err = H.noperm().messages:create(M)
    assert.is_nil(r)
    assert.equal("auth", err.kind)
  end)
end)
