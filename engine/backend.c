/* s1_backend_open: picks the backend by name. */
#include <string.h>

#include "backend.h"
#include "cuda_module.h"

s1_backend *s1_backend_open(const char *name, const s1_model *m, const s1_backend_cfg *cfg,
                            s1_err *err)
{
    if (!strcmp(name, "cpu")) return s1_cpu_backend_open(m, cfg, err);
    if (!strcmp(name, "cuda")) return s1_cuda_module_open(m, cfg, err);
    s1_errf(err, "unknown backend %s (use cpu or cuda)", name);
    return NULL;
}
