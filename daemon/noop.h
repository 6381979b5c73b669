/* daemon/noop.h — the noop engine behind s1d_runner (see runner.h): no
 * model, no tensors; the same calls and rules as engine/include/engine.h. */
#ifndef S1D_NOOP_H
#define S1D_NOOP_H

#include "engine.h"

typedef struct s1d_noop s1d_noop;

/* rate: thinking tokens per second per sequence; 0 = finish at once. */
s1d_noop *s1d_noop_open(int max_seqs, double rate);
void s1d_noop_close(s1d_noop *n);
const s1_engine_info *s1d_noop_info(const s1d_noop *n);
int s1d_noop_add(s1d_noop *n, const s1_request *r, s1_err *err);
int s1d_noop_cancel(s1d_noop *n, uint64_t tag);
int s1d_noop_step(s1d_noop *n);
int s1d_noop_capacity(const s1d_noop *n);
s1_result *s1d_noop_take_result(s1d_noop *n);
s1_resume *s1d_noop_save(const s1d_noop *n, uint64_t tag, s1_err *err);
int s1d_noop_progress(const s1d_noop *n, uint64_t tag, int *thinking, int *generated);
void s1d_noop_free_result(s1_result *r);

#endif
