/*
 * fuzz_rows: byte 1 picks a column plan, the rest is a CSV file (a memfd);
 * every record read through the plan in C (reader:next_record, di_rows.c)
 * must be what the Lua record builder makes of the same row, and a row the
 * plan declines must be one the builder refuses.  Invariants in
 * fuzz/lua/fuzz_rows.lua.
 */
#include "harness.h"

DI_FUZZ_FILE_TARGET("fuzz_rows")
