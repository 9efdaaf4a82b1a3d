/*
 * di_core.c: luaopen_dialoginsight_core, the one entry point of the C core.
 * Each concern registers itself from its own file (di_json.c, di_http.c);
 * the protocol logic lives in Lua, on top (lua/dialoginsight/).
 */
#include "di_core.h"

const char di_array_mt_key[] = "dialoginsight.array";

#if defined(__GNUC__)
__attribute__((visibility("default")))
#endif
int luaopen_dialoginsight_core(lua_State *L);

int luaopen_dialoginsight_core(lua_State *L) {
  lua_newtable(L);
  di_json_open(L);
  di_http_open(L);
  di_time_open(L);
  lua_pushliteral(L, "dialoginsight.core 0.1.0");
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
