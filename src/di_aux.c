/* di_aux.c: see di_aux.h for why this is a unit of its own. */
#include "di_aux.h"

/* Registers a userdata class: methods under __index, and `close` as both
 * __gc and __close, so that a forgotten object still frees its C resources
 * and a Lua 5.4 `local x <close>` frees them on scope exit. */
void di_new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                  lua_CFunction close, lua_CFunction tostring) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  di_setfuncs(L, methods, 0);
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
