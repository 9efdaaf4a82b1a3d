/*
 * di_json.h: core.encode's encoder (src/di_json.c), for the units that
 * write JSON of Lua values, and the mark of JSON written already, which
 * those units hand it as a value: the encoder knows no unit above it.
 */
#ifndef DI_JSON_H
#define DI_JSON_H

#include "di_buf.h"
#include "di_compat.h"

/* Appends the JSON of the value at idx to out.  Returns 1; 0 with the
 * reason ("path: why") appended to err (empty when out of memory). */
int di_json_encode(lua_State *L, int idx, di_buf *out, di_buf *err);

/* Registers the metatable at mt_idx as a class of arrays written already: the
 * memory of each of its userdata starts with a di_buf holding the JSON of
 * the array's elements, comma-separated, which the encoder copies between
 * [ and ] as it is (the row batch of src/di_rows.c). */
void di_json_mark_raw_array(lua_State *L, int mt_idx);

/* Pushes the value of the JSON text s[0..len) as core.decode gives it (a BOM
 * skipped; src/di_json_pick.c): returns 1; or pushes nil and the message, returns 2. */
int di_json_decode_text(lua_State *L, const char *s, size_t len);

#endif
