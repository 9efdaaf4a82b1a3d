/*
 * fuzz_csv: arbitrary bytes as a CSV file (a memfd, through /proc/self/fd),
 * read to the end with core.csv_open; the rows it accepts are written back
 * with the host's CSV writer (cli/csv.lua) and must read back the same.
 * Invariants in fuzz/lua/fuzz_csv.lua.
 */
#include "harness.h"

DI_FUZZ_FILE_TARGET("fuzz_csv")
