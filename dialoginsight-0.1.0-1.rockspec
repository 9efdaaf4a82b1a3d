-- LuaRocks build of the same sources as the Makefile.
--   luarocks --lua-version=5.4 make --deps-mode=none --tree=/tmp/rocks
-- lua-cjson is a run-time dependency; on Debian it comes from the lua-cjson
-- package, hence --deps-mode=none when LuaRocks' registry is out of reach.
package = "dialoginsight"
version = "0.1.0-1"
source = {
  url = "git+https://example.invalid/dialoginsight.git",
  tag = "v0.1.0",
}
description = {
  summary = "Dialog Insight web services (OFC4) for Lua, with a C core",
  detailed = [[
Contacts, segments, campaigns, sendings and statistics of the Dialog Insight
marketing platform as plain Lua tables. HTTPS through libcurl, JSON through
lua-cjson, retries and a rate limiter shared across processes.]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1",
  "lua-cjson >= 2.1",
}
-- Debian keeps curl/curl.h in the multiarch include directory, which the
-- compiler searches by itself; checking the library is enough (DESIGN.md).
external_dependencies = {
  CURL = { library = "curl" },
  HIREDIS = { header = "hiredis/hiredis.h", library = "hiredis" },
}
build = {
  type = "builtin",
  modules = {
    ["dialoginsight"] = "lua/dialoginsight/init.lua",
    ["dialoginsight.call.reply"] = "lua/dialoginsight/call/reply.lua",
    ["dialoginsight.call.request"] = "lua/dialoginsight/call/request.lua",
    ["dialoginsight.call.retry"] = "lua/dialoginsight/call/retry.lua",
    ["dialoginsight.call.scheduler"] = "lua/dialoginsight/call/scheduler.lua",
    ["dialoginsight.config"] = "lua/dialoginsight/config.lua",
    ["dialoginsight.errors"] = "lua/dialoginsight/errors.lua",
    ["dialoginsight.limiter"] = "lua/dialoginsight/limiter/init.lua",
    ["dialoginsight.limiter.adaptive"] = "lua/dialoginsight/limiter/adaptive.lua",
    ["dialoginsight.limiter.shm"] = "lua/dialoginsight/limiter/shm.lua",
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
    ["dialoginsight.resources.projects"] = "lua/dialoginsight/resources/projects.lua",
    ["dialoginsight.resources.reports"] = "lua/dialoginsight/resources/reports.lua",
    ["dialoginsight.resources.segments"] = "lua/dialoginsight/resources/segments.lua",
    ["dialoginsight.resources.sendings"] = "lua/dialoginsight/resources/sendings.lua",
    ["dialoginsight.resources.tables"] = "lua/dialoginsight/resources/tables.lua",
    ["dialoginsight.transport.curl"] = "lua/dialoginsight/transport/curl.lua",
    ["dialoginsight.transport.ngx"] = "lua/dialoginsight/transport/ngx.lua",
    ["dialoginsight.core"] = {
      sources = {
        "src/di_core.c", "src/di_aux.c", "src/di_buf.c", "src/di_json.c", "src/di_json_scan.c",
        "src/di_json_pick.c",
        "src/di_http.c", "src/di_time.c", "src/di_limiter.c", "src/di_limiter_file.c",
        "src/di_csv.c", "src/di_redis.c",
      },
      libraries = { "curl", "hiredis" },
      incdirs = { "$(HIREDIS_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)", "$(HIREDIS_LIBDIR)" },
    },
  },
}
