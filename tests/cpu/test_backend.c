/* s1_backend_open and the CPU backend's guards, on a small model built in
 * memory: names it does not know, bad batches and block ids are errors that
 * say what is wrong, never crashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend.h"
#include "s1_config.h"

enum { HIDDEN = 8, HEADS = 2, KV = 1, HD = 4, INTER = 16, VOCAB = 12 };

static float storage[4096];

static s1_tensor t2(size_t at, int64_t rows, int64_t cols)
{
    return (s1_tensor){.data = storage + at,
                       .dtype = S1_DTYPE_F32,
                       .rows = rows,
                       .cols = cols,
                       .row_stride = cols};
}

typedef struct {
    s1_model m;
    s1_layer l;
} fixture;

/* One layer of small random f32 weights. */
static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    unsigned s = 1;
    for (size_t i = 0; i < sizeof storage / sizeof *storage; i++) {
        s = s * 1103515245u + 12345u;
        storage[i] = (float)((s >> 9) & 0xff) / 1024.0f;
    }
    f->m.cfg = (s1_model_config){.vocab_size = VOCAB,
                                 .hidden_size = HIDDEN,
                                 .intermediate_size = INTER,
                                 .n_layers = 1,
                                 .n_heads = HEADS,
                                 .n_kv_heads = KV,
                                 .head_dim = HD,
                                 .rms_norm_eps = 1e-6f,
                                 .rope_theta = 10000.0f};
    f->l = (s1_layer){.attn_norm = t2(0, 1, HIDDEN),
                      .wq = t2(100, 8, HIDDEN),
                      .bq = t2(200, 1, 8),
                      .wk = t2(300, 4, HIDDEN),
                      .bk = t2(400, 1, 4),
                      .wv = t2(500, 4, HIDDEN),
                      .bv = t2(600, 1, 4),
                      .wo = t2(700, HIDDEN, 8),
                      .mlp_norm = t2(800, 1, HIDDEN),
                      .w_gate = t2(900, INTER, HIDDEN),
                      .w_up = t2(1100, INTER, HIDDEN),
                      .w_down = t2(1300, HIDDEN, INTER)};
    f->m.w = (s1_weights){.embed = t2(1500, VOCAB, HIDDEN),
                          .layers = &f->l,
                          .final_norm = t2(1700, 1, HIDDEN),
                          .lm_head = t2(1800, VOCAB, HIDDEN)};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static const s1_backend_cfg cfg = {.tp = 1, .threads = 2, .block_size = 4, .n_blocks = 8};

static void test_unknown_backends_are_named_in_the_error(void **state)
{
    fixture *f = *state;
    s1_err err = {{0}};
    assert_null(s1_backend_open("tpu", &f->m, &cfg, &err));
    assert_string_equal(err.msg, "unknown backend tpu (use cpu or cuda)");
#if !S1_HAVE_CUDA
    assert_null(s1_backend_open("cuda", &f->m, &cfg, &err));
    assert_string_equal(
        err.msg, "cuda: this build has no CUDA backend (nvcc was not found when it was built)");
#endif
}

static void test_kernels_this_cpu_cannot_run_are_refused(void **state)
{
    fixture *f = *state;
    s1_err err = {{0}};
    setenv("S1_CPU_KERNELS", "sse9", 1);
    s1_backend *b = s1_backend_open("cpu", &f->m, &cfg, &err);
    unsetenv("S1_CPU_KERNELS");
    assert_null(b);
    assert_non_null(strstr(err.msg, "S1_CPU_KERNELS=sse9"));
}

static void test_bad_batches_and_block_ids_are_errors(void **state)
{
    fixture *f = *state;
    s1_err err = {{0}};
    s1_backend *b = s1_backend_open("cpu", &f->m, &cfg, &err);
    assert_non_null(b);
    assert_int_equal(b->n_blocks, 8);
    int32_t blocks[2] = {3, 5}, tok[3] = {1, 2, 3}, pos[3] = {0, 1, 2}, seq[3] = {0, 0, 0};
    int32_t rows[1] = {2};
    float logits[VOCAB];
    s1_block_table t = {.blocks = blocks, .n_blocks = 2};
    s1_batch ok = {.n_tokens = 3,
                   .tokens = tok,
                   .pos = pos,
                   .seq = seq,
                   .n_seqs = 1,
                   .tables = &t,
                   .n_out = 1,
                   .out_rows = rows,
                   .logits = logits};
    assert_int_equal(s1_backend_forward(b, &ok, &err), 0);
    s1_batch bad = ok;
    pos[2] = 8; /* past its two blocks of 4 */
    assert_int_equal(s1_backend_forward(b, &bad, &err), -1);
    assert_non_null(strstr(err.msg, "position 8 is outside its 2 blocks"));
    pos[2] = 2;
    blocks[1] = 8;
    assert_int_equal(s1_backend_forward(b, &bad, &err), -1);
    assert_non_null(strstr(err.msg, "outside the cache's 8"));
    blocks[1] = 5;
    seq[1] = 1;
    assert_int_equal(s1_backend_forward(b, &bad, &err), -1);
    seq[1] = 0;
    rows[0] = 3;
    assert_int_equal(s1_backend_forward(b, &bad, &err), -1);
    assert_non_null(strstr(err.msg, "out_rows[0] = 3"));
    rows[0] = 2;
    assert_int_equal(s1_backend_copy_block(b, 3, 9, &err), -1);
    assert_int_equal(s1_backend_copy_block(b, 3, 7, &err), 0);
    s1_batch empty = {.n_seqs = 0};
    assert_int_equal(s1_backend_forward(b, &empty, &err), 0);
    s1_backend_close(b);
}

static void test_tensor_parallel_ranks_refuse_a_model_they_cannot_split(void **state)
{
    fixture *f = *state;
    s1_err err = {{0}};
    s1_backend_cfg tp2 = cfg;
    tp2.tp = 2;
    assert_null(s1_backend_open("cpu", &f->m, &tp2, &err));
    assert_non_null(strstr(err.msg, "1 kv heads do not split into 2 ranks"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unknown_backends_are_named_in_the_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kernels_this_cpu_cannot_run_are_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_batches_and_block_ids_are_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tensor_parallel_ranks_refuse_a_model_they_cannot_split,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
