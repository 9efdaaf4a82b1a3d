-- LuaRocks build of the same sources as the Makefile, for Lua 5.4 and 5.1
-- (plain or LuaJIT), from a checkout of this repository:
--   luarocks --lua-version=5.4 make --deps-mode=none --tree=/tmp/rocks
-- installs the library and, for Lua 5.4, the dialoginsight command
-- (bin/dialoginsight: the host, which embeds Lua 5.4); for 5.1, the library
-- alone.  The build type is "make": the Makefile's rock-build and
-- rock-install targets build under build/rock/, never beside the sources.
-- lua-cjson (run time) and argparse (embedded in the command at build time)
-- come from Debian's lua-cjson and lua-argparse, hence --deps-mode=none
-- when LuaRocks' registry is out of reach (README.md, "Install").
-- The project is published nowhere: `luarocks make` builds the checkout it
-- runs in and never fetches `source`, which names that checkout; `make rock`
-- packs the working tree as a source rock that `luarocks install` builds
-- offline (scripts/make-rock replaces `source` with the packed archive).
rockspec_format = "3.0"
package = "dialoginsight"
version = "0.1.0-1"
source = {
  url = "git+file://.",
}
description = {
  summary = "Dialog Insight web services (OFC4) for Lua, with a C core",
  detailed = [[
Contacts, segments, campaigns, sendings and statistics of the Dialog Insight
marketing platform as plain Lua tables. HTTPS through libcurl, JSON through
lua-cjson, retries and a rate limiter shared across processes. For Lua 5.4
the rock also installs the dialoginsight command (sync, export, run, ...).]],
  license = "MIT",
}
-- the versions the specs run under (scripts/test): 5.4, and 5.1 plain and LuaJIT
dependencies = {
  "lua >= 5.1, ~= 5.2, ~= 5.3, < 5.5",
  "lua-cjson >= 2.1",
}
build_dependencies = {
  "argparse >= 0.6",
}
-- Debian keeps curl/curl.h in the multiarch include directory, which the
-- compiler searches by itself; checking the library is enough.
external_dependencies = {
  CURL = { library = "curl" },
  HIREDIS = { header = "hiredis/hiredis.h", library = "hiredis" },
  SQLITE = { header = "sqlite3.h", library = "sqlite3" },
  CRYPTO = { header = "openssl/hmac.h", library = "crypto" },
}
build = {
  type = "make",
  build_target = "rock-build",
  build_variables = {
    CC = "$(CC)", CFLAGS = "$(CFLAGS)", LIBFLAG = "$(LIBFLAG)",
    -- no LUA_LIBDIR or LUALIB: LuaRocks defines them only where Lua must be
    -- linked explicitly (not on Linux) and warns when they are asked for;
    -- the Makefile finds the host's liblua5.4 through pkg-config
    LUA = "$(LUA)", LUA_INCDIR = "$(LUA_INCDIR)",
    CURL_LIBDIR = "$(CURL_LIBDIR)",
    HIREDIS_INCDIR = "$(HIREDIS_INCDIR)", HIREDIS_LIBDIR = "$(HIREDIS_LIBDIR)",
  },
  install_target = "rock-install",
  install_variables = {
    LUA = "$(LUA)", LIBDIR = "$(LIBDIR)", BINDIR = "$(BINDIR)",
  },
  -- every module of lua/dialoginsight/ but cli/, the command's own modules,
  -- which are embedded in it (scripts/check-install checks this list)
  install = {
    lua = {
        ["dialoginsight.call.reply"] = "lua/dialoginsight/call/reply.lua",
        ["dialoginsight.call.request"] = "lua/dialoginsight/call/request.lua",
        ["dialoginsight.call.retry"] = "lua/dialoginsight/call/retry.lua",
        ["dialoginsight.call.scheduler"] = "lua/dialoginsight/call/scheduler.lua",
        ["dialoginsight.client"] = "lua/dialoginsight/client.lua",
        ["dialoginsight.config"] = "lua/dialoginsight/config.lua",
        ["dialoginsight.errors"] = "lua/dialoginsight/errors.lua",
        ["dialoginsight"] = "lua/dialoginsight/init.lua",
        ["dialoginsight.limiter.adaptive"] = "lua/dialoginsight/limiter/adaptive.lua",
        ["dialoginsight.limiter.host"] = "lua/dialoginsight/limiter/host.lua",
        ["dialoginsight.limiter"] = "lua/dialoginsight/limiter/init.lua",
        ["dialoginsight.limiter.redis"] = "lua/dialoginsight/limiter/redis.lua",
        ["dialoginsight.limiter.reserve"] = "lua/dialoginsight/limiter/reserve.lua",
        ["dialoginsight.limiter.shm"] = "lua/dialoginsight/limiter/shm.lua",
        ["dialoginsight.log"] = "lua/dialoginsight/log.lua",
        ["dialoginsight.metrics"] = "lua/dialoginsight/metrics/init.lua",
        ["dialoginsight.metrics.ngx"] = "lua/dialoginsight/metrics/ngx.lua",
        ["dialoginsight.options"] = "lua/dialoginsight/options.lua",
        ["dialoginsight.records.fields"] = "lua/dialoginsight/records/fields.lua",
        ["dialoginsight.records.merge"] = "lua/dialoginsight/records/merge.lua",
        ["dialoginsight.records.record"] = "lua/dialoginsight/records/record.lua",
        ["dialoginsight.records.where"] = "lua/dialoginsight/records/where.lua",
        ["dialoginsight.registry"] = "lua/dialoginsight/registry.lua",
        ["dialoginsight.resources.base"] = "lua/dialoginsight/resources/base.lua",
        ["dialoginsight.resources.campaigns"] = "lua/dialoginsight/resources/campaigns.lua",
        ["dialoginsight.resources.contacts"] = "lua/dialoginsight/resources/contacts.lua",
        ["dialoginsight.resources.messages"] = "lua/dialoginsight/resources/messages.lua",
        ["dialoginsight.resources.pager"] = "lua/dialoginsight/resources/pager.lua",
        ["dialoginsight.resources.pager_ids"] = "lua/dialoginsight/resources/pager_ids.lua",
        ["dialoginsight.resources.projects"] = "lua/dialoginsight/resources/projects.lua",
        ["dialoginsight.resources.reports"] = "lua/dialoginsight/resources/reports.lua",
        ["dialoginsight.resources.segments"] = "lua/dialoginsight/resources/segments.lua",
        ["dialoginsight.resources.sendings"] = "lua/dialoginsight/resources/sendings.lua",
        ["dialoginsight.resources.tables"] = "lua/dialoginsight/resources/tables.lua",
        ["dialoginsight.sqlite"] = "lua/dialoginsight/sqlite.lua",
        ["dialoginsight.transport.curl"] = "lua/dialoginsight/transport/curl.lua",
        ["dialoginsight.transport.ngx"] = "lua/dialoginsight/transport/ngx.lua",
        ["dialoginsight.webhooks"] = "lua/dialoginsight/webhooks/init.lua",
        ["dialoginsight.webhooks.ngx"] = "lua/dialoginsight/webhooks/ngx.lua",
        ["dialoginsight.webhooks.receiver"] = "lua/dialoginsight/webhooks/receiver.lua",
        ["dialoginsight.webhooks.runner"] = "lua/dialoginsight/webhooks/runner.lua",
        ["dialoginsight.webhooks.shared"] = "lua/dialoginsight/webhooks/shared.lua",
        ["dialoginsight.webhooks.store"] = "lua/dialoginsight/webhooks/store.lua",
    },
  },
}
