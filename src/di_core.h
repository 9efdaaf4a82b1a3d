/*
 * di_core.h: the openers di_core.c calls, one per unit.  Only the opener
 * includes it to call them; a unit includes it only to have its own opener's
 * prototype checked.  What units share with each other lives in leaf headers
 * (di_aux.h, di_buf.h, di_time.h), never here, so that no unit depends on
 * the one that opens it.
 */
#ifndef DI_CORE_H
#define DI_CORE_H

#include "di_compat.h"

/* Each opener adds its functions to the module table on top of the stack. */
void di_json_open(lua_State *L);
void di_http_open(lua_State *L);
void di_time_open(lua_State *L);
void di_limiter_open(lua_State *L);
void di_csv_open(lua_State *L);
void di_redis_open(lua_State *L);
void di_json_pick_open(lua_State *L);
void di_rows_open(lua_State *L);
void di_file_open(lua_State *L);
void di_hmac_open(lua_State *L);
void di_sqlite_open(lua_State *L);
void di_keyset_open(lua_State *L);

#endif
