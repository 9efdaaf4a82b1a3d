/*
 * di_core.c: luaopen_dialoginsight_core, the one entry point of the C core.
 * Each concern registers itself from its own file (di_json.c, di_http.c);
 * the protocol logic lives in Lua, on top (lua/dialoginsight/).
 */
#include "di_core.h"

/* Registers a userdata class: methods under __index, and `close` as both
 * __gc and __close, so that a forgotten object still frees its C resources
 * and a Lua 5.4 `local x <close>` frees them on scope exit. */
void di_new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                      lua_CFunction close, lua_CFunction tostring) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, close);
  lua_setfield(L, -2, "__gc");
  di_set_close(L, close);
  if (tostring) {
    lua_pushcfunction(L, tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}

DI_EXPORT int luaopen_dialoginsight_core(lua_State *L);

int luaopen_dialoginsight_core(lua_State *L) {
  lua_newtable(L);
  di_json_open(L);
  di_http_open(L);
  di_time_open(L);
  di_limiter_open(L);
  di_csv_open(L);
  lua_pushliteral(L, "dialoginsight.core 0.1.0");
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
