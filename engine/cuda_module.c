#include "cuda_module.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "s1_config.h"

typedef s1_backend *(*open_fn)(const s1_model *m, const s1_backend_cfg *cfg, s1_err *err);

/* The loaded module's entry point; loading is tried again after a failure
 * (the user may fix LD_LIBRARY_PATH between two opens of a long-lived test). */
static pthread_mutex_t load_mu = PTHREAD_MUTEX_INITIALIZER;
static open_fn module_open;

/* Each library the module needs, by the name the loader reports, and what
 * provides it. */
static const struct {
    const char *soname, *what;
} needed[] = {
    {"libcudart.so", "the CUDA runtime (libcudart: the CUDA Toolkit 13, e.g. the Debian "
                     "package cuda-cudart-13-0)"},
    {"libcublasLt.so", "cuBLASLt (libcublasLt: libcublas-13-0)"},
    {"libcublas.so", "cuBLAS (libcublas: libcublas-13-0)"},
    {"libnccl.so", "NCCL (libnccl: the libnccl2 package, or the nvidia-nccl-cu13 wheel)"},
    {"libcuda.so", "the NVIDIA driver (libcuda: install the driver and check nvidia-smi)"},
};

const char *s1_cuda_module_missing(const char *dl_error)
{
    for (size_t i = 0; dl_error && i < sizeof needed / sizeof *needed; i++)
        if (strstr(dl_error, needed[i].soname)) return needed[i].what;
    return NULL;
}

/* dir/s1cuda.so into buf when that file exists. */
static bool module_in(const char *dir, char *buf, size_t cap)
{
    if (!dir || !*dir) return false;
    const int n = snprintf(buf, cap, "%s/%s", dir, S1_CUDA_MODULE_FILE);
    return n > 0 && (size_t)n < cap && access(buf, F_OK) == 0;
}

/* The directory of the running program, for a module installed beside it. */
static bool program_dir(char *buf, size_t cap)
{
    const ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
    if (n <= 0) return false;
    buf[n] = 0;
    char *slash = strrchr(buf, '/');
    if (!slash) return false;
    *slash = 0;
    return true;
}

/* Finds the module file; fills path or explains where it looked. */
static int find_module(char *path, size_t cap, s1_err *err)
{
    const char *env = getenv("S1_CUDA_MODULE");
    if (env && *env) {
        if (access(env, F_OK) == 0 && snprintf(path, cap, "%s", env) < (int)cap) return 0;
        return s1_errf(err, "cuda: S1_CUDA_MODULE=%s: no such file; point it at %s or unset it",
                       env, S1_CUDA_MODULE_FILE);
    }
    char dir[PATH_MAX];
    if ((program_dir(dir, sizeof dir) && module_in(dir, path, cap)) ||
        module_in(S1_CUDA_MODULE_DIR, path, cap) || module_in(S1_CUDA_BUILD_DIR, path, cap))
        return 0;
    if (!S1_HAVE_CUDA)
        return s1_errf(
            err, "cuda: this build has no CUDA backend (nvcc was not found when it was built)");
    return s1_errf(err,
                   "cuda: the CUDA backend module %s is neither beside this program nor in %s; "
                   "install s1d with it (meson install) or set S1_CUDA_MODULE to its path",
                   S1_CUDA_MODULE_FILE, S1_CUDA_MODULE_DIR);
}

/* dlopen's failure as one line: which library is missing and how to get it. */
static int load_error(const char *path, const char *why, s1_err *err)
{
    const char *missing = s1_cuda_module_missing(why);
    if (missing)
        return s1_errf(err,
                       "cuda: cannot load %s: %s is missing (%s); install it or add its "
                       "directory to LD_LIBRARY_PATH, or use --backend cpu",
                       path, missing, why);
    return s1_errf(err, "cuda: cannot load %s: %s", path, why);
}

/* Opens the module and checks that it was built with this s1d. */
static int load(s1_err *err)
{
    char path[PATH_MAX];
    if (find_module(path, sizeof path, err)) return -1;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) return load_error(path, dlerror(), err);
    const char *version = dlsym(h, "s1_cuda_module_version");
    open_fn fn = (open_fn)dlsym(h, "s1_cuda_backend_open");
    if (!version || !fn || strcmp(version, S1_VERSION)) {
        const int rc = s1_errf(err,
                               "cuda: %s is not the CUDA backend of s1d %s (found %s); reinstall "
                               "s1d or point S1_CUDA_MODULE at the module built with it",
                               path, S1_VERSION, version ? version : "no version");
        dlclose(h);
        return rc;
    }
    module_open = fn;
    return 0;
}

s1_backend *s1_cuda_module_open(const s1_model *m, const s1_backend_cfg *cfg, s1_err *err)
{
    pthread_mutex_lock(&load_mu);
    const int rc = module_open ? 0 : load(err);
    pthread_mutex_unlock(&load_mu);
    return rc ? NULL : module_open(m, cfg, err);
}
