/*
 * di_rows.h: CSV records built into wire records in C (src/di_rows.c), for
 * the CSV reader's next_record (src/di_csv.c).  A batch is an array of
 * JSON written already (src/di_json.h), which the encoder copies as it is.
 */
#ifndef DI_ROWS_H
#define DI_ROWS_H

#include <stddef.h>

#include "di_compat.h"

/* Raises unless plan_idx is a column plan (core.row_plan) and batch_idx a
 * batch (core.row_batch). */
void di_rows_check(lua_State *L, int plan_idx, int batch_idx);

/* Builds the record of nf fields (field j is data[ends[j-1] .. ends[j]),
 * the first from 0) through the plan, and appends it to the batch with the
 * line it starts on.  Returns 1; 0 when the plan declines it (a value it
 * does not take: the caller's own builder then says why, in its words),
 * with the batch unchanged.  Raises only when out of memory. */
int di_rows_add(lua_State *L, int plan_idx, int batch_idx, const char *data,
                const size_t *ends, int nf, long line);

#endif
