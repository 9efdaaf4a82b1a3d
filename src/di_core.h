/* di_core.h: what the units of the C core share with each other. */
#ifndef DI_CORE_H
#define DI_CORE_H

#include "di_compat.h"

/* Each opener adds its functions to the module table on top of the stack. */
void di_json_open(lua_State *L);
void di_http_open(lua_State *L);
void di_time_open(lua_State *L);
void di_limiter_open(lua_State *L);
void di_csv_open(lua_State *L);

void di_new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                  lua_CFunction close, lua_CFunction tostring);

/* Seconds on CLOCK_MONOTONIC. */
double di_now(void);

#endif
