/*
 * di_aux.h: the userdata class helper of every unit that hands C objects to
 * Lua (sessions, multis, limiters, CSV readers), in the manner of LuaSocket's
 * auxiliar.c.  A leaf: it depends on nothing of ours but di_compat.h, so the
 * units can share it without calling back into di_core.c, which opens them.
 */
#ifndef DI_AUX_H
#define DI_AUX_H

#include "di_compat.h"

void di_new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                  lua_CFunction close, lua_CFunction tostring);

#endif
