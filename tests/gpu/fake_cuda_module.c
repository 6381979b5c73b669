/* A module that needs libcublasLt.so.99 (fake_cublaslt.c): dlopen must fail
 * on it, and s1d must name the library and how to install it. */
int s1_fake_cublaslt(void);
int s1_fake_module(void);

int s1_fake_module(void)
{
    return s1_fake_cublaslt();
}
