/* store/export.h — results leave the database for pandas and R: one row per
 * result of a benchmark run or of chosen jobs, streamed row by row so a run
 * of any size needs the memory of one row. */
#ifndef S1_EXPORT_H
#define S1_EXPORT_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "err.h"

/* Which results: those of a benchmark run (run > 0), else of jobs ids. */
typedef struct {
    long long run;
    const long long *jobs;
    int n_jobs;
    bool trace; /* add the trace column (often 10-100 KB a row) */
} s1_export_query;

/* Called with each row (a single-row result, owned by the caller of the
 * callback's caller: do not clear it); nonzero stops the export. */
typedef int (*s1_export_row_fn)(void *ud, const PGresult *row);

/* Streams the rows, oldest job first, then sample. Returns the number of
 * rows, or -1 with err (a stop by fn is not an error: the count so far). */
long long s1_export_rows(PGconn *c, const s1_export_query *q, s1_export_row_fn fn, void *ud,
                         s1_err *err);

/* The ids among ids[0..n) that name no job, comma-separated ("" when all
 * exist; malloc'ed); NULL with err when the query fails. */
char *s1_export_missing_jobs(PGconn *c, const long long *ids, int n, s1_err *err);

#endif
