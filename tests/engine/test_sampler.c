/* The sampler: greedy ties, top-k and top-p limits, temperature sampling
 * against softmax, and per-sequence seeding. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "sampler.h"

enum { V = 64 };

static s1_sampler sampler(float temperature, float top_p, int top_k, uint64_t seed)
{
    s1_sampler s;
    s1_sampling cfg = {.temperature = temperature, .top_p = top_p, .top_k = top_k, .seed = seed};
    s1_sampler_init(&s, &cfg);
    return s;
}

/* Logits drawn from a sampler's own generator, so each test's are fixed. */
static void random_logits(float *l, int n, uint64_t seed)
{
    s1_sampler g = sampler(1, 0, 0, seed);
    for (int i = 0; i < n; i++)
        l[i] = (float)(6 * s1_sampler_uniform(&g) - 3);
}

static void test_greedy_takes_the_lowest_id_among_ties(void **state)
{
    (void)state;
    s1_sampler_ws *ws = s1_sampler_ws_new(4);
    s1_sampler s = sampler(0, 0, 0, 1);
    assert_int_equal(s1_sampler_sample(&s, ws, (float[]){1, 5, 5, 2}, 4), 1);
    assert_int_equal(s1_sampler_sample(&s, ws, (float[]){NAN, 0, -1, 0}, 4), 1);
    s1_sampler_ws_free(ws);
}

static void test_ids_past_the_vocabulary_are_never_sampled(void **state)
{
    (void)state;
    float l[V + 8];
    random_logits(l, V + 8, 3);
    for (int i = V; i < V + 8; i++)
        l[i] = 100;
    s1_sampler_ws *ws = s1_sampler_ws_new(V);
    s1_sampler g = sampler(0, 0, 0, 1), t = sampler(2, 0, 0, 1);
    assert_true(s1_sampler_sample(&g, ws, l, V) < V);
    for (int i = 0; i < 200; i++)
        assert_true(s1_sampler_sample(&t, ws, l, V) < V);
    s1_sampler_ws_free(ws);
}

static void test_top_k_of_one_and_a_tiny_top_p_are_greedy(void **state)
{
    (void)state;
    s1_sampler_ws *ws = s1_sampler_ws_new(V);
    for (uint64_t seed = 0; seed < 50; seed++) {
        float l[V];
        random_logits(l, V, 100 + seed);
        s1_sampler g = sampler(0, 0, 0, seed), k = sampler(1.5f, 0, 1, seed),
                   p = sampler(1.5f, 1e-6f, 0, seed);
        int32_t want = s1_sampler_sample(&g, ws, l, V);
        assert_int_equal(s1_sampler_sample(&k, ws, l, V), want);
        assert_int_equal(s1_sampler_sample(&p, ws, l, V), want);
    }
    s1_sampler_ws_free(ws);
}

static void test_top_k_and_top_p_keep_only_the_most_probable(void **state)
{
    (void)state;
    /* Probabilities 0.5, 0.3, 0.15, 0.05 (in a shuffled order). */
    float l[4] = {logf(0.15f), logf(0.5f), logf(0.05f), logf(0.3f)};
    s1_sampler_ws *ws = s1_sampler_ws_new(4);
    s1_sampler p = sampler(1, 0.7f, 0, 9), k = sampler(1, 0, 3, 9);
    int seen_p[4] = {0}, seen_k[4] = {0};
    for (int i = 0; i < 2000; i++) {
        seen_p[s1_sampler_sample(&p, ws, l, 4)]++;
        seen_k[s1_sampler_sample(&k, ws, l, 4)]++;
    }
    assert_int_equal(seen_p[0] + seen_p[2], 0);
    assert_true(seen_p[1] > 0 && seen_p[3] > 0);
    assert_int_equal(seen_k[2], 0);
    assert_true(seen_k[0] > 0 && seen_k[1] > 0 && seen_k[3] > 0);
    s1_sampler_ws_free(ws);
}

/* Chi-square of the sample counts against softmax(logits / T), 5 classes:
 * the 0.1% critical value at 4 degrees of freedom is 18.5; the seed is fixed,
 * so the check is loose but cannot flake. */
static void test_temperature_sampling_follows_the_softmax(void **state)
{
    (void)state;
    const float l[5] = {1.0f, 0.5f, 0.0f, -0.5f, 2.0f};
    const float t = 0.8f;
    const int n = 20000;
    double z = 0, p[5];
    for (int i = 0; i < 5; i++)
        z += p[i] = exp(l[i] / t);
    s1_sampler_ws *ws = s1_sampler_ws_new(5);
    s1_sampler s = sampler(t, 0, 0, 1234);
    int seen[5] = {0};
    for (int i = 0; i < n; i++)
        seen[s1_sampler_sample(&s, ws, l, 5)]++;
    double chi2 = 0;
    for (int i = 0; i < 5; i++) {
        double want = n * p[i] / z;
        chi2 += (seen[i] - want) * (seen[i] - want) / want;
    }
    assert_true(chi2 < 18.5);
    s1_sampler_ws_free(ws);
}

static void test_the_same_seed_gives_the_same_sequence(void **state)
{
    (void)state;
    float l[V];
    random_logits(l, V, 5);
    s1_sampler_ws *ws = s1_sampler_ws_new(V);
    s1_sampler a = sampler(1, 0.9f, 40, 77), b = sampler(1, 0.9f, 40, 77),
               c = sampler(1, 0.9f, 40, 78);
    int differ = 0;
    for (int i = 0; i < 100; i++) {
        int32_t x = s1_sampler_sample(&a, ws, l, V);
        assert_int_equal(x, s1_sampler_sample(&b, ws, l, V));
        differ += x != s1_sampler_sample(&c, ws, l, V);
    }
    assert_true(differ > 0);
    s1_sampler_ws_free(ws);
}

/* The nucleus as it is defined: every candidate in the total order (more
 * probable first, then lower id), cut where the mass reaches top_p, and the
 * draw walked in that order. A plain sort, to check the sampler's own. */
typedef struct {
    float w;
    int32_t id;
} ref_cand;

static int ref_cmp(const void *pa, const void *pb)
{
    const ref_cand *a = pa, *b = pb;
    if (a->w != b->w) return a->w > b->w ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

static int32_t ref_nucleus_sample(s1_sampler *rng, const float *l, int n, float t, double top_p)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[best]) best = i;
    ref_cand *c = malloc((size_t)n * sizeof *c);
    double total = 0;
    for (int i = 0; i < n; i++) {
        c[i] = (ref_cand){expf((l[i] - l[best]) / t), i};
        total += c[i].w;
    }
    int m = 0;
    for (int i = 0; i < n; i++)
        if (c[i].w >= (1.0 - top_p) * total / n) c[m++] = c[i];
    qsort(c, (size_t)m, sizeof *c, ref_cmp);
    int k = m;
    double acc = 0;
    for (int i = 0; i < m; i++)
        if ((acc += c[i].w) >= top_p * total) {
            k = i + 1;
            break;
        }
    double kept = 0;
    for (int i = 0; i < k; i++)
        kept += c[i].w;
    double u = s1_sampler_uniform(rng) * kept;
    int32_t id = c[k - 1].id;
    for (int i = 0; i < k; i++)
        if ((u -= c[i].w) < 0) {
            id = c[i].id;
            break;
        }
    free(c);
    return id;
}

/* A 150k vocabulary of few distinct logits (ties everywhere) at a high
 * temperature: most of it is in the nucleus, and its order decides the
 * token drawn. */
static void test_a_near_flat_nucleus_is_walked_in_the_total_order(void **state)
{
    (void)state;
    enum { BIG = 150000 };
    float *l = malloc(BIG * sizeof *l);
    for (int i = 0; i < BIG; i++)
        l[i] = (float)((i * 7919) % 97) / 40.0f;
    s1_sampler_ws *ws = s1_sampler_ws_new(BIG);
    s1_sampler s = sampler(1.7f, 0.95f, 0, 21), ref = sampler(1.7f, 0.95f, 0, 21);
    for (int i = 0; i < 20; i++)
        assert_int_equal(s1_sampler_sample(&s, ws, l, BIG),
                         ref_nucleus_sample(&ref, l, BIG, 1.7f, 0.95f));
    s1_sampler_ws_free(ws);
    free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_takes_the_lowest_id_among_ties),
        cmocka_unit_test(test_a_near_flat_nucleus_is_walked_in_the_total_order),
        cmocka_unit_test(test_ids_past_the_vocabulary_are_never_sampled),
        cmocka_unit_test(test_top_k_of_one_and_a_tiny_top_p_are_greedy),
        cmocka_unit_test(test_top_k_and_top_p_keep_only_the_most_probable),
        cmocka_unit_test(test_temperature_sampling_follows_the_softmax),
        cmocka_unit_test(test_the_same_seed_gives_the_same_sequence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
