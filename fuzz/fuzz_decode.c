/*
 * fuzz_decode: arbitrary bytes as an HTTP reply body.  core.decode (cjson and
 * the integer/null fix-up pass), then Client:interpret for a status chosen
 * by the first byte (200, 400, 429 or 503).  Invariants, checked by
 * fuzz/lua/fuzz_decode.lua: no crash, a response table or an error object
 * with a valid kind, and the API key in no field of the error.
 */
#include "harness.h"

DI_FUZZ_TARGET("fuzz_decode")
