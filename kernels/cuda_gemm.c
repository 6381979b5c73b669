#include "cuda_gemm.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_util.h"
#include "s1_kernels.h"

/* cuBLASLt's heuristic query costs microseconds of host time, as much as a
 * small decode GEMM, so each shape's plan is kept. A forward uses five shapes
 * per distinct token count; old plans are replaced round-robin. */
#define PLANS     256
#define WORKSPACE (32u << 20)

typedef struct {
    int n, m, k;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
} plan;

struct s1_cuda_gemm {
    int dev;
    bool gemv; /* n <= S1K_GEMV_MAX_N through s1k_gemv (S1_CUDA_GEMV=0: cuBLASLt) */
    cudaStream_t st;
    cublasLtHandle_t lt; /* owned */
    void *ws;            /* [WORKSPACE] device, owned */
    plan plans[PLANS];   /* [n_plans] owned */
    int n_plans, next;
};

static void plan_free(plan *p)
{
    if (p->op) cublasLtMatmulDescDestroy(p->op);
    if (p->a) cublasLtMatrixLayoutDestroy(p->a);
    if (p->b) cublasLtMatrixLayoutDestroy(p->b);
    if (p->c) cublasLtMatrixLayoutDestroy(p->c);
    *p = (plan){0};
}

s1_cuda_gemm *s1_cuda_gemm_new(int dev, cudaStream_t st, s1_err *err)
{
    s1_cuda_gemm *g = calloc(1, sizeof *g);
    if (!g) {
        s1_errf(err, "cuda: out of host memory");
        return NULL;
    }
    const char *gemv = getenv("S1_CUDA_GEMV");
    g->dev = dev;
    g->st = st;
    g->gemv = !(gemv && !strcmp(gemv, "0"));
    if (CUBLAS(dev, cublasLtCreate(&g->lt)) || CU(dev, cudaMalloc(&g->ws, WORKSPACE))) {
        s1_cuda_gemm_free(g);
        return NULL;
    }
    return g;
}

void s1_cuda_gemm_free(s1_cuda_gemm *g)
{
    if (!g) return;
    for (int i = 0; i < g->n_plans; i++)
        plan_free(&g->plans[i]);
    if (g->ws) cudaFree(g->ws);
    if (g->lt) cublasLtDestroy(g->lt);
    free(g);
}

/* Row-major y[n, m] is column-major y^T [m, n] = W[k, m]^T . x^T[k, n] in
 * column-major terms: A = W (k x m, transposed), B = x (k x n), C = y (m x n). */
static int plan_make(s1_cuda_gemm *g, plan *p, int n, int m, int k, s1_err *err)
{
    const int dev = g->dev;
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    *p = (plan){.n = n, .m = m, .k = k};
    if (CUBLAS(dev, cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F)) ||
        CUBLAS(dev, cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta,
                                                   sizeof ta)) ||
        CUBLAS(dev, cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb,
                                                   sizeof tb)) ||
        CUBLAS(dev, cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, k, m, k)) ||
        CUBLAS(dev, cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, k, n, k)) ||
        CUBLAS(dev, cublasLtMatrixLayoutCreate(&p->c, CUDA_R_32F, m, n, m)))
        goto fail;

    cublasLtMatmulPreference_t pref = NULL;
    const uint64_t wsz = WORKSPACE;
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    int rc = CUBLAS(dev, cublasLtMatmulPreferenceCreate(&pref));
    if (!rc)
        rc = CUBLAS(dev, cublasLtMatmulPreferenceSetAttribute(
                             pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsz, sizeof wsz));
    if (!rc)
        rc = CUBLAS(dev, cublasLtMatmulAlgoGetHeuristic(g->lt, p->op, p->a, p->b, p->c, p->c, pref,
                                                        1, &res, &found));
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (rc) goto fail;
    if (found < 1) {
        s1_errf(err, "cuda: cuBLASLt has no bf16 GEMM for m=%d n=%d k=%d on GPU %d", m, n, k, dev);
        goto fail;
    }
    p->algo = res.algo;
    return 0;
fail:
    plan_free(p);
    return -1;
}

static const plan *plan_get(s1_cuda_gemm *g, int n, int m, int k, s1_err *err)
{
    for (int i = 0; i < g->n_plans; i++)
        if (g->plans[i].n == n && g->plans[i].m == m && g->plans[i].k == k) return &g->plans[i];
    plan *p;
    if (g->n_plans < PLANS) {
        p = &g->plans[g->n_plans];
    } else {
        p = &g->plans[g->next];
        g->next = (g->next + 1) % PLANS;
        plan_free(p);
    }
    if (plan_make(g, p, n, m, k, err)) return NULL;
    if (p == &g->plans[g->n_plans]) g->n_plans++;
    return p;
}

int s1_cuda_gemm_run(s1_cuda_gemm *g, float *y, const uint16_t *x, const uint16_t *w, int n, int m,
                     int k, s1_err *err)
{
    if (n <= 0) return 0;
    if (g->gemv && n <= S1K_GEMV_MAX_N && k % 8 == 0)
        return CU(g->dev, s1k_gemv(y, x, w, n, m, k, g->st));
    const plan *p = plan_get(g, n, m, k, err);
    if (!p) return -1;
    const float one = 1.f, zero = 0.f;
    return CUBLAS(g->dev, cublasLtMatmul(g->lt, p->op, &one, w, p->a, x, p->b, &zero, y, p->c, y,
                                         p->c, &p->algo, g->ws, WORKSPACE, g->st));
}
