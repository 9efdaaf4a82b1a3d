/*
 * fuzz_fields: arbitrary bytes turned into a Lua value by a deterministic
 * byte-driven builder (fuzz/lua/fuzz_value.lua: nested tables, any bytes in
 * strings, integers up to math.maxinteger, NaN and inf, booleans, cycles,
 * di.null, marked arrays, where-clause nodes), then the record builder
 * against a fixed project schema (strict and not), where.compile (contact
 * resolver and bare) and core.encode.  Invariants in fuzz/lua/fuzz_fields.lua.
 */
#include "harness.h"

DI_FUZZ_TARGET("fuzz_fields")
