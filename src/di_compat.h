/*
 * di_compat.h: every difference between the Lua 5.4 API and the Lua 5.1 API
 * of LuaJIT 2.1 (the one OpenResty embeds) lives here, so that no #if about
 * Lua versions appears anywhere else in src/.
 */
#ifndef DI_COMPAT_H
#define DI_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM >= 503
#define DI_HAS_INTEGERS 1
#define di_isinteger(L, i) lua_isinteger((L), (i))
#else
/* Lua 5.1 has one number type (double); an "integer" is any integral double,
 * which is how the JSON encoder must treat it anyway. */
#define DI_HAS_INTEGERS 0
#define di_isinteger(L, i) 0
#endif

#if LUA_VERSION_NUM >= 502
#define di_rawlen(L, i) lua_rawlen((L), (i))
#define di_absindex(L, i) lua_absindex((L), (i))
#else
#define di_rawlen(L, i) lua_objlen((L), (i))
#define di_absindex(L, i) \
  (((i) > 0 || (i) <= LUA_REGISTRYINDEX) ? (i) : lua_gettop(L) + (i) + 1)
#endif

/* Lua 5.4 closes to-be-closed variables through __close; older runtimes never
 * look the field up, so setting it is harmless but useless there. */
#if LUA_VERSION_NUM >= 504
#define DI_HAS_CLOSE 1
#else
#define DI_HAS_CLOSE 0
#endif

#endif
