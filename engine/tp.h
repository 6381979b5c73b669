/* engine/tp.h — tensor parallelism on the CPU: tp ranks as threads, each on
 * its shard (shard.h) with its own worker threads and its part of the KV
 * cache (its kv heads), joined by an in-process all-reduce (sum) after the
 * attention output and after the MLP's down projection; every rank writes
 * its vocabulary slice of the logits. It exists to test the sharding without
 * GPUs: its logits match TP=1's up to the order of the sums. */
#ifndef S1_TP_H
#define S1_TP_H

#include "backend.h"

/* Opens cfg->tp CPU ranks on model m; cfg->threads are shared among them
 * (at least one each). Fails naming the reason when m does not split into
 * cfg->tp ranks. Reached through s1_backend_open("cpu") with tp > 1. */
s1_backend *s1_tp_backend_open(const s1_model *m, const s1_backend_cfg *cfg, s1_err *err);

#endif
