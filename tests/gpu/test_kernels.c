/* tests/gpu/test_kernels.c — every CUDA kernel against a CPU reference on
 * fresh random inputs, outputs poisoned (NaN) before each launch so an
 * element left unwritten fails. Tolerances, as ||gpu - ref|| / ||ref||:
 * exact for copies, conversions and masks; 4e-3 where the output is rounded
 * to bf16 once (2^-9 relative per element); 1e-2 for attention (bf16 output,
 * fast exp); 1e-3 for the GEMM and GEMV (bf16 inputs, f32 accumulation and
 * output; the gap is only the order of the sums). */
#include "gpu_test.h"

#include "cuda_gemm.h"
#include "cuda_plan.h"
#include "s1_kernels.h"

static uint16_t *rand_bf16(size_t n, float lo, float hi)
{
    uint16_t *p = malloc(n * 2);
    for (size_t i = 0; i < n; i++)
        p[i] = gt_f2bf(gt_uniform(lo, hi));
    return p;
}

static float *rand_f32(size_t n, float lo, float hi)
{
    float *p = malloc(n * 4);
    for (size_t i = 0; i < n; i++)
        p[i] = gt_uniform(lo, hi);
    return p;
}

static void test_convert(void)
{
    const size_t n = 100003;
    float *f = rand_f32(n, -100, 100);
    f[0] = 0x1.00fffep0f; /* rounds up */
    f[1] = 0x1.008000p0f; /* a tie: to even (down) */
    uint16_t *h16 = malloc(n * 2), *out = malloc(n * 2);
    for (size_t i = 0; i < n; i++)
        h16[i] = (uint16_t)(gt_next() & 0x7bff); /* finite halves */
    float *d32 = gt_upload(f, n * 4);
    uint16_t *d16 = gt_upload(h16, n * 2), *dout = gt_dev(n * 2);

    GT_CUDA(s1k_convert(dout, 1, d32, S1K_F32, (int64_t)n, 0));
    gt_download(out, dout, n * 2);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += out[i] != gt_f2bf(f[i]);
    gt_ok(bad == 0, "f32 -> bf16 rounds to nearest even (%zu of %zu differ)", bad, n);

    GT_CUDA(s1k_convert(dout, 1, d16, S1K_F16, (int64_t)n, 0));
    gt_download(out, dout, n * 2);
    bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += out[i] != gt_f2bf(gt_f16_to_f(h16[i]));
    gt_ok(bad == 0, "f16 -> bf16 matches the CPU (%zu differ)", bad);

    float *back = malloc(n * 4);
    GT_CUDA(s1k_convert(d32, 0, dout, S1K_BF16, (int64_t)n, 0));
    gt_download(back, d32, n * 4);
    bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += back[i] != gt_bf2f(out[i]);
    gt_ok(bad == 0, "bf16 -> f32 is exact (%zu differ)", bad);
    free(f), free(h16), free(out), free(back);
    cudaFree(d32), cudaFree(d16), cudaFree(dout);
}

static void test_embed_gather(void)
{
    const int vocab = 1000, d = 3584, n = 9;
    uint16_t *emb = rand_bf16((size_t)vocab * d, -1, 1);
    int32_t tok[9] = {0, 999, 5, 5, 17, 123, 998, 1, 500};
    uint16_t *demb = gt_upload(emb, (size_t)vocab * d * 2);
    int32_t *dtok = gt_upload(tok, sizeof tok);
    float *dx = gt_dev((size_t)n * d * 4), *x = malloc((size_t)n * d * 4);
    GT_CUDA(s1k_embed(dx, demb, dtok, n, d, 0));
    gt_download(x, dx, (size_t)n * d * 4);
    size_t bad = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            bad += x[(size_t)i * d + j] != gt_bf2f(emb[(size_t)tok[i] * d + j]);
    gt_ok(bad == 0, "embedding rows are gathered exactly (%zu differ)", bad);

    int32_t rows[4] = {8, 0, 3, 3};
    int32_t *drows = gt_upload(rows, sizeof rows);
    uint16_t *dout = gt_dev((size_t)4 * d * 2), *out = malloc((size_t)4 * d * 2);
    GT_CUDA(s1k_gather_rows(dout, demb, drows, 4, d, 0));
    gt_download(out, dout, (size_t)4 * d * 2);
    bad = 0;
    for (int i = 0; i < 4; i++)
        bad += memcmp(out + (size_t)i * d, emb + (size_t)rows[i] * d, (size_t)d * 2) != 0;
    gt_ok(bad == 0, "rows are gathered exactly (%zu rows differ)", bad);
    free(emb), free(x), free(out);
    cudaFree(demb), cudaFree(dtok), cudaFree(dx), cudaFree(drows), cudaFree(dout);
}

static void test_add_rmsnorm(int n, int d, bool with_y)
{
    const size_t nd = (size_t)n * d;
    float *x = rand_f32(nd, -3, 3), *y = rand_f32(nd, -3, 3), *w = rand_f32((size_t)d, 0.5f, 1.5f);
    float *dx = gt_upload(x, nd * 4), *dy = gt_upload(y, nd * 4), *dw = gt_upload(w, (size_t)d * 4);
    uint16_t *dout = gt_dev(nd * 2), *out = malloc(nd * 2);
    float *xo = malloc(nd * 4), *outf = malloc(nd * 4);
    double *ref = malloc(nd * sizeof *ref), *xref = malloc(nd * sizeof *xref);
    GT_CUDA(s1k_add_rmsnorm(dx, with_y ? dy : NULL, dout, dw, n, d, 1e-6f, 0));
    gt_download(out, dout, nd * 2);
    gt_download(xo, dx, nd * 4);
    for (int i = 0; i < n; i++) {
        double ss = 0;
        for (int j = 0; j < d; j++) {
            const size_t k = (size_t)i * d + j;
            xref[k] = (double)(x[k] + (with_y ? y[k] : 0.f));
            ss += xref[k] * xref[k];
        }
        const double r = 1 / sqrt(ss / d + 1e-6);
        for (int j = 0; j < d; j++)
            ref[(size_t)i * d + j] = xref[(size_t)i * d + j] * r * w[j];
    }
    for (size_t k = 0; k < nd; k++)
        outf[k] = gt_bf2f(out[k]);
    const double ex = gt_rel_err(xo, xref, nd), eo = gt_rel_err(outf, ref, nd);
    gt_ok(ex == 0 && eo < 4e-3,
          "add+rmsnorm n=%d d=%d%s: residual exact (err %.2g), norm err %.2g < 4e-3", n, d,
          with_y ? "" : " (no add)", ex, eo);
    free(x), free(y), free(w), free(out), free(xo), free(outf), free(ref), free(xref);
    cudaFree(dx), cudaFree(dy), cudaFree(dw), cudaFree(dout);
}

/* A paged cache of nb blocks: cache element (slot s, head h, dim j). */
static size_t kv_index(int64_t slot, int h, int j, int nkv, int bs, int hd)
{
    return (size_t)((((slot / bs) * nkv + h) * bs + slot % bs) * hd + j);
}

static void test_rope_qkv(void)
{
    const int n = 6, nh = 8, nkv = 2, hd = 128, bs = 16, nb = 10, max_pos = 4096;
    const int W = (nh + 2 * nkv) * hd;
    const size_t cache = (size_t)nb * nkv * bs * hd;
    float *qkv = rand_f32((size_t)n * W, -2, 2), *bias = rand_f32((size_t)W, -1, 1);
    float *rope = malloc((size_t)max_pos * hd * 4);
    const double theta = 1e6;
    for (int p = 0; p < max_pos; p++)
        for (int j = 0; j < hd / 2; j++) {
            const double a = p * pow(theta, -2.0 * j / hd);
            rope[((size_t)p * hd / 2 + j) * 2] = (float)cos(a);
            rope[((size_t)p * hd / 2 + j) * 2 + 1] = (float)sin(a);
        }
    int32_t pos[6] = {0, 1, 17, 4095, 300, 2048}, slot[6] = {0, 1, 159, 40, 77, 100};
    float *dqkv = gt_upload(qkv, (size_t)n * W * 4), *dbias = gt_upload(bias, (size_t)W * 4);
    float *drope = gt_upload(rope, (size_t)max_pos * hd * 4);
    int32_t *dpos = gt_upload(pos, sizeof pos), *dslot = gt_upload(slot, sizeof slot);
    uint16_t *dq = gt_dev((size_t)n * nh * hd * 2), *dk = gt_dev(cache * 2),
             *dv = gt_dev(cache * 2);
    GT_CUDA(s1k_rope_qkv(dqkv, dbias, drope, dpos, dslot, dq, dk, dv, n, nh, nkv, hd, bs, 0));
    uint16_t *q = malloc((size_t)n * nh * hd * 2), *k = malloc(cache * 2), *v = malloc(cache * 2);
    gt_download(q, dq, (size_t)n * nh * hd * 2);
    gt_download(k, dk, cache * 2);
    gt_download(v, dv, cache * 2);

    const size_t nq = (size_t)n * nh * hd, nk = (size_t)n * nkv * hd;
    double *rq = malloc(nq * 8), *rk = malloc(nk * 8), *rv = malloc(nk * 8);
    float *gq = malloc(nq * 4), *gk = malloc(nk * 4), *gv = malloc(nk * 4);
    for (int t = 0; t < n; t++)
        for (int h = 0; h < nh + nkv; h++)
            for (int j = 0; j < hd; j++) {
                const int b = h * hd, jj = j % (hd / 2);
                const double a = pos[t] * pow(theta, -2.0 * jj / hd);
                const double x1 = (double)qkv[(size_t)t * W + b + jj] + bias[b + jj];
                const double x2 =
                    (double)qkv[(size_t)t * W + b + jj + hd / 2] + bias[b + jj + hd / 2];
                const double o = j < hd / 2 ? x1 * cos(a) - x2 * sin(a) : x2 * cos(a) + x1 * sin(a);
                if (h < nh) {
                    rq[((size_t)t * nh + h) * hd + j] = o;
                    gq[((size_t)t * nh + h) * hd + j] = gt_bf2f(q[((size_t)t * nh + h) * hd + j]);
                } else {
                    rk[((size_t)t * nkv + h - nh) * hd + j] = o;
                    gk[((size_t)t * nkv + h - nh) * hd + j] =
                        gt_bf2f(k[kv_index(slot[t], h - nh, j, nkv, bs, hd)]);
                }
            }
    for (int t = 0; t < n; t++)
        for (int h = 0; h < nkv; h++)
            for (int j = 0; j < hd; j++) {
                const int b = (nh + nkv + h) * hd + j;
                rv[((size_t)t * nkv + h) * hd + j] = (double)qkv[(size_t)t * W + b] + bias[b];
                gv[((size_t)t * nkv + h) * hd + j] =
                    gt_bf2f(v[kv_index(slot[t], h, j, nkv, bs, hd)]);
            }
    /* Every cache element not at a batch slot must still be poisoned. */
    size_t touched = 0;
    for (size_t i = 0; i < cache; i++)
        touched += k[i] != 0xffff || v[i] != 0xffff;
    const double eq = gt_rel_err(gq, rq, nq), ek = gt_rel_err(gk, rk, nk),
                 ev = gt_rel_err(gv, rv, nk);
    gt_ok(eq < 4e-3 && ek < 4e-3 && ev < 4e-3,
          "bias + rope: q err %.2g, k err %.2g, v err %.2g (< 4e-3)", eq, ek, ev);
    gt_ok(touched == (size_t)n * nkv * hd,
          "rope writes exactly the batch's cache slots (%zu elements)", touched);
    free(qkv), free(bias), free(rope), free(q), free(k), free(v), free(rq), free(rk), free(rv);
    free(gq), free(gk), free(gv);
    cudaFree(dqkv), cudaFree(dbias), cudaFree(drope), cudaFree(dpos), cudaFree(dslot);
    cudaFree(dq), cudaFree(dk), cudaFree(dv);
}

/* Tokens with contexts of various lengths, their blocks scattered over the
 * cache in random order, against softmax(q k^T / sqrt(hd)) v in double. The
 * work is planned by s1_plan_attention for max_items items (NT: one per
 * token; more: long contexts cut into spans) and launched on a grid sized
 * for grid_items >= max_items, as a captured graph is. */
static void test_attention(int nh, int nkv, int hd, int max_items, int grid_items)
{
    enum { NT = 5 };
    const int bs = 16, ctx[NT] = {1, 17, 300, 2000, 129}, max_blocks = 2000 / 16 + 1;
    const int nb = NT * max_blocks + 3;
    const size_t cache = (size_t)nb * nkv * bs * hd;
    uint16_t *k = rand_bf16(cache, -1, 1), *v = rand_bf16(cache, -1, 1);
    uint16_t *q = rand_bf16((size_t)NT * nh * hd, -1.5f, 1.5f);
    /* a random permutation of the blocks, cut into per-token tables */
    int32_t *perm = malloc((size_t)nb * 4), tbl[NT], c[NT];
    for (int i = 0; i < nb; i++)
        perm[i] = i;
    for (int i = nb - 1; i > 0; i--) {
        const int j = (int)(gt_next() % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    for (int t = 0; t < NT; t++)
        tbl[t] = t * max_blocks, c[t] = ctx[t];
    uint16_t *dk = gt_upload(k, cache * 2), *dv = gt_upload(v, cache * 2);
    uint16_t *dq = gt_upload(q, (size_t)NT * nh * hd * 2), *dout = gt_dev((size_t)NT * nh * hd * 2);
    int32_t *dctx = gt_upload(c, sizeof c), *dtbl = gt_upload(tbl, sizeof tbl);
    int32_t *dblocks = gt_upload(perm, (size_t)nb * 4);
    int32_t first[NT + 1], plan[2], *item_tok = malloc((size_t)grid_items * 4);
    plan[0] = s1_plan_attention(c, NT, max_items, &plan[1], first, item_tok);
    int32_t *dplan = gt_upload(plan, sizeof plan), *dfirst = gt_upload(first, sizeof first);
    int32_t *ditems = gt_upload(item_tok, (size_t)grid_items * 4);
    float *dpart = gt_dev((size_t)grid_items * nh * (hd + 2) * 4);
    GT_CUDA(s1k_attention(dq, dk, dv, dctx, dtbl, dblocks, dplan, dfirst, ditems, dpart, dout, NT,
                          nh, nkv, hd, bs, grid_items, 0));
    uint16_t *out = malloc((size_t)NT * nh * hd * 2);
    gt_download(out, dout, (size_t)NT * nh * hd * 2);

    const size_t no = (size_t)NT * nh * hd;
    double *ref = malloc(no * 8), *s = malloc(2000 * 8);
    float *got = malloc(no * 4);
    const int G = nh / nkv;
    for (int t = 0; t < NT; t++)
        for (int h = 0; h < nh; h++) {
            const int kh = h / G;
            double mx = -INFINITY, sum = 0;
            for (int p = 0; p < ctx[t]; p++) {
                const int64_t slot = (int64_t)perm[tbl[t] + p / bs] * bs + p % bs;
                double d = 0;
                for (int j = 0; j < hd; j++)
                    d += (double)gt_bf2f(q[((size_t)t * nh + h) * hd + j]) *
                         gt_bf2f(k[kv_index(slot, kh, j, nkv, bs, hd)]);
                s[p] = d / sqrt((double)hd);
                if (s[p] > mx) mx = s[p];
            }
            for (int p = 0; p < ctx[t]; p++)
                sum += s[p] = exp(s[p] - mx);
            for (int j = 0; j < hd; j++) {
                double o = 0;
                for (int p = 0; p < ctx[t]; p++) {
                    const int64_t slot = (int64_t)perm[tbl[t] + p / bs] * bs + p % bs;
                    o += s[p] * gt_bf2f(v[kv_index(slot, kh, j, nkv, bs, hd)]);
                }
                ref[((size_t)t * nh + h) * hd + j] = o / sum;
                got[((size_t)t * nh + h) * hd + j] = gt_bf2f(out[((size_t)t * nh + h) * hd + j]);
            }
        }
    const double e = gt_rel_err(got, ref, no);
    gt_ok(e < 1e-2, "paged attention nh=%d nkv=%d hd=%d, %d items of %d positions: err %.2g < 1e-2",
          nh, nkv, hd, plan[0], plan[1], e);
    free(k), free(v), free(q), free(perm), free(out), free(ref), free(s), free(got), free(item_tok);
    cudaFree(dplan), cudaFree(dfirst), cudaFree(ditems);
    cudaFree(dk), cudaFree(dv), cudaFree(dq), cudaFree(dout), cudaFree(dctx), cudaFree(dtbl);
    cudaFree(dblocks), cudaFree(dpart);
}

/* n above 65535 rows checks that rows are not a grid dimension. */
static void test_swiglu(int n, int inter)
{
    const size_t m = (size_t)n * inter;
    float *gu = rand_f32(2 * m, -6, 6), *got = malloc(m * 4);
    double *ref = malloc(m * 8);
    float *dgu = gt_upload(gu, 2 * m * 4);
    uint16_t *dout = gt_dev(m * 2), *out = malloc(m * 2);
    GT_CUDA(s1k_swiglu(dout, dgu, n, inter, 0));
    gt_download(out, dout, m * 2);
    for (int t = 0; t < n; t++)
        for (int i = 0; i < inter; i++) {
            const double g = gu[(size_t)t * 2 * inter + i],
                         u = gu[(size_t)t * 2 * inter + inter + i];
            ref[(size_t)t * inter + i] = g / (1 + exp(-g)) * u;
            got[(size_t)t * inter + i] = gt_bf2f(out[(size_t)t * inter + i]);
        }
    const double e = gt_rel_err(got, ref, m);
    gt_ok(e < 4e-3, "swiglu of %d rows: err %.2g < 4e-3", n, e);
    free(gu), free(got), free(ref), free(out);
    cudaFree(dgu), cudaFree(dout);
}

static void test_mask(void)
{
    const int rows = 3, ld = 5000;
    float *l = rand_f32((size_t)rows * ld, -5, 5), *got = malloc((size_t)rows * ld * 4);
    int32_t ids[] = {7, 4999, 0, /* row 1 none */ 12, 12, -1, 5000}, off[] = {0, 3, 3, 7};
    float *dl = gt_upload(l, (size_t)rows * ld * 4);
    int32_t *dids = gt_upload(ids, sizeof ids), *doff = gt_upload(off, sizeof off);
    GT_CUDA(s1k_mask_logits(dl, ld, dids, doff, rows, 0));
    gt_download(got, dl, (size_t)rows * ld * 4);
    for (int r = 0; r < rows; r++)
        for (int k = off[r]; k < off[r + 1]; k++)
            if (ids[k] >= 0 && ids[k] < ld) l[(size_t)r * ld + ids[k]] = -INFINITY;
    gt_ok(memcmp(got, l, (size_t)rows * ld * 4) == 0,
          "the logit mask sets exactly the listed ids to -inf");
    free(l), free(got);
    cudaFree(dl), cudaFree(dids), cudaFree(doff);
}

static void test_copy_block(void)
{
    const int planes = 6, nb = 5;
    const size_t blk = 2 * 16 * 128 * 2, plane = blk * nb, total = plane * planes;
    uint16_t *h = rand_bf16(total / 2, -1, 1), *got = malloc(total);
    uint16_t *d = gt_upload(h, total);
    GT_CUDA(s1k_copy_block(d, plane, blk, 1, 3, planes, 0));
    gt_download(got, d, total);
    for (int p = 0; p < planes; p++)
        memcpy((char *)h + p * plane + 3 * blk, (char *)h + p * plane + blk, blk);
    gt_ok(memcmp(got, h, total) == 0,
          "copy_block copies block 1 over block 3 in every plane, nothing else");
    free(h), free(got);
    cudaFree(d);
}

static int32_t sample_one(float *dl, int ld, int n, s1k_sample_param p, s1k_sample_param *dp,
                          int32_t *dout)
{
    int32_t r;
    GT_CUDA(cudaMemcpy(dp, &p, sizeof p, cudaMemcpyHostToDevice));
    GT_CUDA(s1k_sample(dl, ld, n, dp, dout, 1, 0));
    gt_download(&r, dout, 4);
    return r;
}

static void test_sample(void)
{
    const int ld = 152064, n = 151665;
    float *l = rand_f32((size_t)2 * ld, -10, 10);
    l[1234] = 20, l[99999] = 20; /* a tie: the lower id wins */
    l[150000] = NAN;             /* never chosen */
    l[ld - 1] = 100;             /* past n_vocab: never chosen */
    for (int i = 0; i < ld; i++)
        l[ld + i] = -INFINITY; /* row 2: four live tokens */
    const float p4[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    for (int i = 0; i < 4; i++)
        l[ld + 1000 * i + 5] = logf(p4[i]);
    float *dl = gt_upload(l, (size_t)2 * ld * 4);
    s1k_sample_param *dp = gt_dev(sizeof(s1k_sample_param) * 4096);
    int32_t *dout = gt_dev(4 * 4096);

    s1k_sample_param g = {0};
    gt_ok(sample_one(dl, ld, n, g, dp, dout) == 1234,
          "greedy takes the lowest id among the largest logits");
    /* ties at a threshold are kept: either of the two largest */
    s1k_sample_param k1 = {.temperature = 1.5f, .top_k = 1, .seed = 7};
    int32_t t = sample_one(dl, ld, n, k1, dp, dout);
    gt_ok(t == 1234 || t == 99999, "top_k = 1 samples a largest logit (%d)", t);
    s1k_sample_param pp = {.temperature = 0.7f, .top_p = 1e-4f, .seed = 9};
    t = sample_one(dl, ld, n, pp, dp, dout);
    gt_ok(t == 1234 || t == 99999, "a tiny top_p samples a largest logit (%d)", t);
    s1k_sample_param hot = {.temperature = 1e4f, .seed = 11};
    t = sample_one(dl, ld, n, hot, dp, dout);
    gt_ok(t >= 0 && t < n && t != 150000, "a hot draw stays below n_vocab and never takes NaN (%d)",
          t);

    /* 4096 draws (steps 0..4095) of row 2 at T = 1, all in one launch. */
    enum { DRAWS = 4096 };
    s1k_sample_param *ps = calloc(DRAWS, sizeof *ps);
    for (int i = 0; i < DRAWS; i++)
        ps[i] = (s1k_sample_param){.temperature = 1, .seed = 42, .step = (uint64_t)i};
    /* each draw's row: the 4 live logits at ids 5, 1005, 2005, 3005 of a 4000-wide row */
    float *h = malloc((size_t)DRAWS * 4000 * 4);
    for (int i = 0; i < DRAWS * 4000; i++)
        h[i] = -INFINITY;
    for (int d = 0; d < DRAWS; d++)
        for (int i = 0; i < 4; i++)
            h[(size_t)d * 4000 + 1000 * i + 5] = logf(p4[i]);
    float *drows = gt_upload(h, (size_t)DRAWS * 4000 * 4);
    int32_t *got = malloc(4 * DRAWS);
    GT_CUDA(cudaMemcpy(dp, ps, sizeof *ps * DRAWS, cudaMemcpyHostToDevice));
    GT_CUDA(s1k_sample(drows, 4000, 4000, dp, dout, DRAWS, 0));
    gt_download(got, dout, 4 * DRAWS);
    int cnt[4] = {0}, other = 0;
    for (int d = 0; d < DRAWS; d++) {
        const int id = got[d];
        if (id % 1000 == 5 && id / 1000 < 4)
            cnt[id / 1000]++;
        else
            other++;
    }
    bool fair = other == 0;
    for (int i = 0; i < 4; i++) {
        const double mean = DRAWS * p4[i], sd = sqrt(DRAWS * p4[i] * (1 - p4[i]));
        fair = fair && fabs(cnt[i] - mean) < 5 * sd;
    }
    gt_ok(fair, "T = 1 draws follow the softmax within 5 sigma (%d %d %d %d of %d, %d elsewhere)",
          cnt[0], cnt[1], cnt[2], cnt[3], DRAWS, other);

    /* top_k = 2 keeps ids 2005 and 3005; top_p = 0.5 keeps 3005 and 2005 (0.4 < 0.5 <= 0.7). */
    for (int d = 0; d < DRAWS; d++)
        ps[d].top_k = 2;
    GT_CUDA(cudaMemcpy(dp, ps, sizeof *ps * DRAWS, cudaMemcpyHostToDevice));
    GT_CUDA(s1k_sample(drows, 4000, 4000, dp, dout, DRAWS, 0));
    gt_download(got, dout, 4 * DRAWS);
    int in2 = 0;
    for (int d = 0; d < DRAWS; d++)
        in2 += got[d] == 2005 || got[d] == 3005;
    gt_ok(in2 == DRAWS, "top_k = 2 samples only the two most probable (%d of %d)", in2, DRAWS);
    for (int d = 0; d < DRAWS; d++)
        ps[d].top_k = 0, ps[d].top_p = 0.5f;
    GT_CUDA(cudaMemcpy(dp, ps, sizeof *ps * DRAWS, cudaMemcpyHostToDevice));
    GT_CUDA(s1k_sample(drows, 4000, 4000, dp, dout, DRAWS, 0));
    int32_t *again = malloc(4 * DRAWS);
    gt_download(again, dout, 4 * DRAWS);
    in2 = 0;
    for (int d = 0; d < DRAWS; d++)
        in2 += again[d] == 2005 || again[d] == 3005;
    gt_ok(in2 == DRAWS, "top_p = 0.5 samples only the smallest set reaching 0.5 (%d of %d)", in2,
          DRAWS);
    /* the same (seed, step) draws the same token in any row of any batch */
    GT_CUDA(s1k_sample(drows + (size_t)100 * 4000, 4000, 4000, dp + 100, dout, 1, 0));
    int32_t one;
    gt_download(&one, dout, 4);
    gt_ok(one == again[100], "a draw depends only on the sequence's seed and step, not the batch");

    /* a row with every id masked: sampling still writes a token (id 0) */
    GT_CUDA(cudaMemset(dout, 0xff, 4));
    s1k_sample_param none = {.temperature = 1, .top_p = 0.9f, .seed = 5};
    for (int i = 0; i < 4000; i++)
        h[i] = -INFINITY;
    GT_CUDA(cudaMemcpy(drows, h, 4000 * 4, cudaMemcpyHostToDevice));
    gt_ok(sample_one(drows, 4000, 4000, none, dp, dout) == 0,
          "a row with nothing above -inf samples id 0 instead of leaving its output unwritten");

    free(l), free(ps), free(h), free(got), free(again);
    cudaFree(dl), cudaFree(dp), cudaFree(dout), cudaFree(drows);
}

static void test_gemm(int n, int m, int k)
{
    cudaStream_t st;
    GT_CUDA(cudaStreamCreate(&st));
    s1_err err;
    s1_cuda_gemm *g = s1_cuda_gemm_new(0, st, &err);
    if (!gt_ok(g != NULL, "cuBLASLt opens")) {
        printf("# %s\n", err.msg);
        return;
    }
    uint16_t *x = rand_bf16((size_t)n * k, -1, 1), *w = rand_bf16((size_t)m * k, -1, 1);
    uint16_t *dx = gt_upload(x, (size_t)n * k * 2), *dw = gt_upload(w, (size_t)m * k * 2);
    float *dy = gt_dev((size_t)n * m * 4), *y = malloc((size_t)n * m * 4);
    double *ref = malloc((size_t)n * m * 8);
    int rc = s1_cuda_gemm_run(g, dy, dx, dw, n, m, k, &err);
    GT_CUDA(cudaStreamSynchronize(st));
    gt_download(y, dy, (size_t)n * m * 4);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) {
            double s = 0;
            for (int t = 0; t < k; t++)
                s += (double)gt_bf2f(x[(size_t)i * k + t]) * gt_bf2f(w[(size_t)j * k + t]);
            ref[(size_t)i * m + j] = s;
        }
    const double e = gt_rel_err(y, ref, (size_t)n * m);
    gt_ok(rc == 0 && e < 1e-3, "gemm n=%d m=%d k=%d: err %.2g < 1e-3%s%s", n, m, k, e,
          rc ? ": " : "", rc ? err.msg : "");
    free(x), free(w), free(y), free(ref);
    cudaFree(dx), cudaFree(dw), cudaFree(dy);
    s1_cuda_gemm_free(g);
    cudaStreamDestroy(st);
}

static void test_gemv(int n, int m, int k)
{
    uint16_t *x = rand_bf16((size_t)n * k, -1, 1), *w = rand_bf16((size_t)m * k, -1, 1);
    uint16_t *dx = gt_upload(x, (size_t)n * k * 2), *dw = gt_upload(w, (size_t)m * k * 2);
    float *dy = gt_dev((size_t)n * m * 4), *y = malloc((size_t)n * m * 4);
    double *ref = malloc((size_t)n * m * 8);
    GT_CUDA(s1k_gemv(dy, dx, dw, n, m, k, 0));
    gt_download(y, dy, (size_t)n * m * 4);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) {
            double s = 0;
            for (int t = 0; t < k; t++)
                s += (double)gt_bf2f(x[(size_t)i * k + t]) * gt_bf2f(w[(size_t)j * k + t]);
            ref[(size_t)i * m + j] = s;
        }
    const double e = gt_rel_err(y, ref, (size_t)n * m);
    gt_ok(e < 1e-3, "gemv n=%d m=%d k=%d: err %.2g < 1e-3", n, m, k, e);
    free(x), free(w), free(y), free(ref);
    cudaFree(dx), cudaFree(dw), cudaFree(dy);
}

/* A chain embed -> rmsnorm -> gemv -> add+rmsnorm on one stream gives the
 * same bits with programmatic dependent launch as without it. */
static void chain(cudaStream_t st, float *x, uint16_t *xn, float *y, const uint16_t *emb,
                  const int32_t *tok, const float *w, const uint16_t *wm, int n, int d)
{
    GT_CUDA(s1k_embed(x, emb, tok, n, d, st));
    GT_CUDA(s1k_add_rmsnorm(x, NULL, xn, w, n, d, 1e-6f, st));
    GT_CUDA(s1k_gemv(y, xn, wm, n, d, d, st));
    GT_CUDA(s1k_add_rmsnorm(x, y, xn, w, n, d, 1e-6f, st));
    GT_CUDA(s1k_gemv(y, xn, wm, n, d, d, st));
}

static void test_pdl_chain(void)
{
    const int n = 4, d = 1024, vocab = 50;
    uint16_t *emb = rand_bf16((size_t)vocab * d, -1, 1),
             *wm = rand_bf16((size_t)d * d, -0.05f, 0.05f);
    float *w = rand_f32((size_t)d, 0.5f, 1.5f);
    int32_t tok[4] = {3, 49, 0, 7};
    uint16_t *demb = gt_upload(emb, (size_t)vocab * d * 2), *dwm = gt_upload(wm, (size_t)d * d * 2);
    float *dw = gt_upload(w, (size_t)d * 4);
    int32_t *dtok = gt_upload(tok, sizeof tok);
    float *x = gt_dev((size_t)n * d * 4), *y = gt_dev((size_t)n * d * 4);
    uint16_t *xn = gt_dev((size_t)n * d * 2);
    float *plain = malloc((size_t)n * d * 4), *pdl = malloc((size_t)n * d * 4);
    cudaStream_t st;
    GT_CUDA(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    s1k_set_pdl(0);
    chain(st, x, xn, y, demb, dtok, dw, dwm, n, d);
    gt_download(plain, y, (size_t)n * d * 4);
    s1k_set_pdl(1);
    for (int i = 0; i < 20; i++)
        chain(st, x, xn, y, demb, dtok, dw, dwm, n, d);
    gt_download(pdl, y, (size_t)n * d * 4);
    s1k_set_pdl(0);
    gt_ok(memcmp(plain, pdl, (size_t)n * d * 4) == 0,
          "kernels chained with programmatic dependent launch give the same bits");
    cudaStreamDestroy(st);
    free(emb), free(wm), free(w), free(plain), free(pdl);
    cudaFree(demb), cudaFree(dwm), cudaFree(dw), cudaFree(dtok), cudaFree(x), cudaFree(y),
        cudaFree(xn);
}

int main(void)
{
    gt_require_gpu();
    gt_seed(20261124);
    test_convert();
    test_embed_gather();
    test_add_rmsnorm(4, 3584, true);
    test_add_rmsnorm(3, 256, false);
    test_rope_qkv();
    test_attention(28, 4, 128, 5, 5);
    test_attention(28, 4, 128, 12, 40);
    test_attention(40, 8, 128, 64, 64);
    test_attention(8, 2, 32, 8, 8);
    test_attention(4, 2, 16, 7, 100);
    test_attention(14, 2, 64, 40, 40);
    test_swiglu(3, 18944);
    test_swiglu(70000, 64);
    test_mask();
    test_copy_block();
    test_sample();
    test_gemm(1, 384, 256);
    test_gemm(7, 1000, 3584);
    test_gemm(64, 512, 1024);
    test_gemv(1, 1001, 3584);
    test_gemv(3, 37, 18944);
    test_gemv(8, 512, 256);
    test_gemv(5, 3, 64);
    test_pdl_chain();
    return gt_done();
}
