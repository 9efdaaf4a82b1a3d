/*
 * di_sqlite.h: the SQLite handle of a core.sqlite_open object, for a unit
 * that reads a table in C rather than row by row through Lua (di_keyset.c).
 */
#ifndef DI_SQLITE_H
#define DI_SQLITE_H

#include <sqlite3.h>

#include "di_compat.h"

/* The open handle of the object at index i (raises when it is not one, or closed). */
sqlite3 *di_sqlite_handle(lua_State *L, int i);

#endif
