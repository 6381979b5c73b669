/* tests/gpu/test_cuda_engine.c — budget forcing through the engine API is
 * the same on the cuda backend as on the cpu backend: for greedy requests
 * with a thinking budget, a minimum, suppressed stops and an answer cap, the
 * generated tokens, their kinds, every count and the stop reason agree.
 * Both backends round matmul inputs to bf16; the GPU also keeps q, K and V in
 * bf16, so a greedy choice between two nearly equal logits could still go
 * either way: the context is kept short (384) to bound the tokens compared. */
#include "gpu_test.h"

#include <errno.h>

#include "engine.h"

enum { N_REQ = 4 };

static const char *const problems[N_REQ] = {"What is 2+2?", "Name a prime larger than 20.",
                                            "Think about it: is 91 prime?", "Wait."};

static void fill_requests(s1_request *r)
{
    const s1_policy_cfg pol[N_REQ] = {
        {.max_think = 24, .max_answer = 24},                 /* the budget forces the end */
        {.max_think = 64, .min_think = 40, .max_answer = 8}, /* early stops become waits */
        {.max_think = 48, .ignore_stop = 2, .max_answer = 16},
        {.max_think = 0, .max_answer = 12}, /* no budget */
    };
    for (int i = 0; i < N_REQ; i++)
        r[i] = (s1_request){.tag = (uint64_t)i + 1,
                            .text = problems[i],
                            .text_len = strlen(problems[i]),
                            .policy = pol[i]};
}

/* Runs every request to the end on one backend; results by tag - 1. */
static bool run_all(const char *dir, const char *backend, s1_result **out)
{
    s1_err err;
    s1_engine_cfg cfg = {.model_dir = dir,
                         .backend = backend,
                         .max_seqs = N_REQ,
                         .max_batch_tokens = 64,
                         .block_size = 16,
                         .kv_blocks = 256,
                         .max_context = 384};
    s1_engine *e = s1_engine_open(&cfg, &err);
    if (!gt_ok(e != NULL, "the engine opens on %s%s%s", backend, e ? "" : ": ", e ? "" : err.msg))
        return false;
    s1_request r[N_REQ];
    fill_requests(r);
    bool ok = true;
    for (int i = 0; ok && i < N_REQ; i++)
        ok = s1_engine_add(e, &r[i], &err) == 0;
    int left = 1, steps = 0;
    while (ok && left > 0 && steps++ < 5000) {
        left = s1_engine_step(e, &err);
        ok = left >= 0;
        for (s1_result *res; (res = s1_engine_take_result(e));) {
            if (res->tag >= 1 && res->tag <= N_REQ && !out[res->tag - 1])
                out[res->tag - 1] = res;
            else
                s1_result_free(res);
        }
    }
    gt_ok(ok && left == 0, "%s runs every request to the end%s%s", backend, ok ? "" : ": ",
          ok ? "" : err.msg);
    s1_engine_close(e);
    return ok && left == 0;
}

static void compare(const s1_result *c, const s1_result *g, int i)
{
    if (!gt_ok(c && g, "request %d finished on both backends", i + 1)) return;
    bool same = c->n_gen == g->n_gen && !memcmp(c->gen_ids, g->gen_ids, c->n_gen * 4) &&
                !memcmp(c->gen_kinds, g->gen_kinds, c->n_gen);
    size_t first = 0;
    while (first < c->n_gen && first < g->n_gen && c->gen_ids[first] == g->gen_ids[first])
        first++;
    gt_ok(same, "request %d: the same %zu tokens and kinds (first difference at %zu)", i + 1,
          c->n_gen, first);
    gt_ok(c->stop == g->stop && c->prompt_tokens == g->prompt_tokens &&
              c->thinking_tokens == g->thinking_tokens && c->forced_tokens == g->forced_tokens &&
              c->answer_tokens == g->answer_tokens && c->waits == g->waits &&
              c->forced_end == g->forced_end,
          "request %d: counts agree (cpu: %d thinking, %d forced, %d answer, %d waits, %s; "
          "cuda: %d, %d, %d, %d, %s)",
          i + 1, c->thinking_tokens, c->forced_tokens, c->answer_tokens, c->waits,
          s1_stop_reason_name(c->stop), g->thinking_tokens, g->forced_tokens, g->answer_tokens,
          g->waits, s1_stop_reason_name(g->stop));
}

int main(void)
{
    gt_require_gpu();
    const char *src = getenv("S1_SOURCE_ROOT");
    if (!src) {
        printf("Bail out! S1_SOURCE_ROOT is not set (run through meson test)\n");
        return 1;
    }
    char dir[] = "/tmp/s1-gpu-engine-XXXXXX", cmd[1024];
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    const char *py = getenv("S1_PYTHON"); /* a python3 with numpy; default /usr/bin/python3 */
    snprintf(cmd, sizeof cmd, "%s %s/tools/gen_model.py --out %s --preset small",
             py ? py : "/usr/bin/python3", src, dir);
    s1_result *cpu[N_REQ] = {0}, *gpu[N_REQ] = {0};
    if (gt_ok(system(cmd) == 0, "gen_model.py --preset small writes a model") &&
        run_all(dir, "cpu", cpu) && run_all(dir, "cuda", gpu))
        for (int i = 0; i < N_REQ; i++)
            compare(cpu[i], gpu[i], i);
    for (int i = 0; i < N_REQ; i++) {
        if (cpu[i]) s1_result_free(cpu[i]);
        if (gpu[i]) s1_result_free(gpu[i]);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) printf("# could not remove %s\n", dir);
    return gt_done();
}
