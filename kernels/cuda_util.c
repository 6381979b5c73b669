#include "cuda_util.h"

#include <string.h>

/* The name of the function in a call's source text ("cudaMalloc(&p, n)"). */
static int call_name_len(const char *call)
{
    const char *paren = strchr(call, '(');
    return paren ? (int)(paren - call) : (int)strlen(call);
}

int s1_cuda_check(cudaError_t e, const char *call, int dev, s1_err *err)
{
    if (e == cudaSuccess) return 0;
    return s1_errf(err, "cuda: %.*s on GPU %d: %s (%s)", call_name_len(call), call, dev,
                   cudaGetErrorString(e), cudaGetErrorName(e));
}

int s1_cuda_check_blas(cublasStatus_t s, const char *call, int dev, s1_err *err)
{
    if (s == CUBLAS_STATUS_SUCCESS) return 0;
    return s1_errf(err, "cuda: %.*s on GPU %d: %s", call_name_len(call), call, dev,
                   cublasLtGetStatusString(s));
}

int s1_cuda_check_nccl(ncclResult_t r, const char *call, int dev, s1_err *err)
{
    if (r == ncclSuccess) return 0;
    return s1_errf(err, "cuda: %.*s on GPU %d: %s", call_name_len(call), call, dev,
                   ncclGetErrorString(r));
}
