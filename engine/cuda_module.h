/* engine/cuda_module.h — the CUDA backend as a loadable module: kernels/ is
 * built into s1cuda.so, the only file of s1d that links the CUDA runtime,
 * cuBLASLt and NCCL, and `--backend cuda` opens it with dlopen. So every
 * binary starts without CUDA libraries, and a host without them runs the CPU
 * backend; where they are missing, the error says which and how to install it.
 *
 * The module is looked for at $S1_CUDA_MODULE (a path), else as s1cuda.so
 * beside the running program, in s1d's private library directory, and in the
 * build tree it was built in. */
#ifndef S1_CUDA_MODULE_H
#define S1_CUDA_MODULE_H

#include "backend.h"

#define S1_CUDA_MODULE_FILE "s1cuda.so"

/* Loads the module (once per process; it stays loaded) and opens the CUDA
 * backend through it. */
s1_backend *s1_cuda_module_open(const s1_model *m, const s1_backend_cfg *cfg, s1_err *err);

/* What to install for a library the dynamic loader could not find, from its
 * message (dlerror): e.g. "the CUDA runtime (libcudart, CUDA Toolkit 13)".
 * NULL when the message names none of CUDA's libraries. */
const char *s1_cuda_module_missing(const char *dl_error);

#endif
