/*
 * di_core.c: luaopen_dialoginsight_core, the one entry point of the C core.
 * Each concern registers itself from its own file (di_json.c, di_http.c);
 * the protocol logic lives in Lua, on top (lua/dialoginsight/).  Nothing
 * calls back into this unit: it only opens the others (di_core.h).
 */
#include "di_compat.h"
#include "di_core.h"

DI_EXPORT int luaopen_dialoginsight_core(lua_State *L);

int luaopen_dialoginsight_core(lua_State *L) {
  lua_newtable(L);
  di_json_open(L);
  di_http_open(L);
  di_time_open(L);
  di_limiter_open(L);
  di_csv_open(L);
  di_redis_open(L);
  di_json_pick_open(L);
  di_rows_open(L);
  di_file_open(L);
  di_hmac_open(L);
  di_sqlite_open(L);
  di_keyset_open(L);
  lua_pushliteral(L, "dialoginsight.core 0.1.0");
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
