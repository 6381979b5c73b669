/* A stand-in for a CUDA library, for the loader test in test_cuda_module.py:
 * built as libcublasLt.so.99, which no system has, so a module linked to it
 * and copied away from the build tree cannot be loaded. */
int s1_fake_cublaslt(void);

int s1_fake_cublaslt(void)
{
    return 1;
}
