/*
 * di_compat.h: every difference between the Lua 5.4 API and the Lua 5.1 API
 * of LuaJIT 2.1 (the one OpenResty embeds) and of plain Lua 5.1 lives here,
 * so that no #if about Lua versions appears anywhere else in src/.
 */
#ifndef DI_COMPAT_H
#define DI_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#include <math.h>
#include <string.h>

#if LUA_VERSION_NUM >= 503
#define di_isinteger(L, i) lua_isinteger((L), (i))
/* If the number at i is a float with an integral value within +-limit,
 * pushes it as an integer and returns 1; otherwise pushes nothing. */
static inline int di_push_exact_integer(lua_State *L, int i, double limit) {
  lua_Number x;
  if (lua_isinteger(L, i)) return 0;
  x = lua_tonumber(L, i);
  if (floor(x) != x || fabs(x) > limit) return 0;
  lua_pushinteger(L, (lua_Integer)x);
  return 1;
}
#else
/* Lua 5.1 has one number type (double); an "integer" is any integral double,
 * which is how the JSON encoder must treat it anyway, and decoded numbers
 * need no conversion but one: -0, which Lua 5.4 reads as the integer 0 and
 * core.decode_outcomes pushes as 0, is pushed as 0 here too, so that every
 * runtime and both readers agree. */
#define di_isinteger(L, i) 0
static inline int di_push_exact_integer(lua_State *L, int i, double limit) {
  lua_Number x = lua_tonumber(L, i);
  (void)limit;
  if (x != 0 || !signbit(x)) return 0;
  lua_pushnumber(L, 0);
  return 1;
}
#endif

#if LUA_VERSION_NUM >= 502
#define di_rawlen(L, i) lua_rawlen((L), (i))
#define di_absindex(L, i) lua_absindex((L), (i))
#else
#define di_rawlen(L, i) lua_objlen((L), (i))
#define di_absindex(L, i) \
  (((i) > 0 || (i) <= LUA_REGISTRYINDEX) ? (i) : lua_gettop(L) + (i) + 1)
#endif

/* luaL_testudata came with Lua 5.2: the userdata at i if its metatable is
 * the one registered as tname, else NULL. */
#if LUA_VERSION_NUM >= 502
#define di_testudata(L, i, tname) luaL_testudata((L), (i), (tname))
#else
static inline void *di_testudata(lua_State *L, int i, const char *tname) {
  void *p = lua_touserdata(L, i);
  int same;
  if (p == NULL || !lua_getmetatable(L, i)) return NULL;
  luaL_getmetatable(L, tname);
  same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same ? p : NULL;
}
#endif

/* tonumber(s) for the string s[0..len): pushes the number and returns 1 if
 * s is a numeral as Lua reads one, else pushes nothing and returns 0.
 * buf holds len + 1 bytes, for the copy lua_stringtonumber needs. */
#if LUA_VERSION_NUM >= 503
static inline int di_push_numeral(lua_State *L, const char *s, size_t len, char *buf) {
  memcpy(buf, s, len);
  buf[len] = '\0';
  return lua_stringtonumber(L, buf) == len + 1;
}
#else
static inline int di_push_numeral(lua_State *L, const char *s, size_t len, char *buf) {
  (void)buf;
  lua_pushlstring(L, s, len);
  if (!lua_isnumber(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  lua_pushnumber(L, lua_tonumber(L, -1));
  lua_remove(L, -2);
  return 1;
}
#endif

/* luaL_setfuncs came with Lua 5.2; LuaJIT 2.1 has it, plain Lua 5.1 does
 * not (a core.so built against it failed to load: "undefined symbol:
 * luaL_setfuncs").  Below 5.2 this is the same loop, so that both 5.1
 * runtimes take one path. */
#if LUA_VERSION_NUM >= 502
#define di_setfuncs(L, l, nup) luaL_setfuncs((L), (l), (nup))
#else
static inline void di_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
  int i;
  luaL_checkstack(L, nup + 1, "too many upvalues");
  for (; l->name != NULL; l++) {
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}
#endif

/* Lua 5.4 closes to-be-closed variables through __close; older runtimes have
 * no such thing.  Sets metatable.__close = f for the metatable on top. */
#if LUA_VERSION_NUM >= 504
#define di_set_close(L, f) \
  (lua_pushcfunction((L), (f)), lua_setfield((L), -2, "__close"))
#else
#define di_set_close(L, f) ((void)(f))
#endif

/* The one symbol a Lua module must export, whatever -fvisibility says. */
#if defined(__GNUC__)
#define DI_EXPORT __attribute__((visibility("default")))
#else
#define DI_EXPORT
#endif

#endif
