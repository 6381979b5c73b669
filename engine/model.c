#include "model.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "file.h"
#include "log.h"
#include "model_config.h"
#include "safetensors.h"

#define CONFIG_MAX_BYTES (1u << 20)
#define INDEX_MAX_BYTES  (64u << 20)

/* One mmap'ed safetensors file. */
typedef struct {
    char *path;       /* owned */
    const char *base; /* the file name within path */
    uint8_t *map;     /* mmap of size bytes, owned; NULL for an empty file */
    size_t size;
    s1_st_header h;
} st_file;

struct s1_model_files {
    st_file *files; /* owned */
    size_t n;
    char *index_path;   /* owned; NULL without model.safetensors.index.json */
    json_t *weight_map; /* tensor name -> file name, owned; NULL without index */
};

const char *s1_dtype_name(s1_dtype t)
{
    switch (t) {
    case S1_DTYPE_F32:
        return "f32";
    case S1_DTYPE_F16:
        return "f16";
    case S1_DTYPE_BF16:
        return "bf16";
    }
    return "?";
}

static char *join(const char *dir, const char *name)
{
    char *p;
    return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

static int check_dir(const char *dir, s1_err *err)
{
    struct stat st;
    if (stat(dir, &st) < 0) return s1_errf(err, "model directory %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return s1_errf(
            err, "model directory %s: not a directory; pass the directory holding config.json",
            dir);
    return 0;
}

static int load_config(const char *dir, s1_model_config *cfg, s1_err *err)
{
    _cleanup_free_ char *path = join(dir, "config.json");
    _cleanup_free_ char *text = NULL;
    size_t len;
    if (!path) return s1_errf(err, "out of memory");
    if (s1_read_file(path, CONFIG_MAX_BYTES, &text, &len, err) < 0) return -1;
    return s1_model_config_parse(text, len, path, cfg, err);
}

/* Maps path read-only and parses its header; tensors are used in place. */
static int map_file(st_file *f, s1_err *err)
{
    _cleanup_close_ int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return s1_errf(err, "%s: %s", f->path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) return s1_errf(err, "%s: %s", f->path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return s1_errf(err, "%s: not a regular file", f->path);
    f->size = (size_t)st.st_size;
    if (f->size) {
        void *map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) return s1_errf(err, "%s: mmap: %s", f->path, strerror(errno));
        f->map = map;
    }
    static const uint8_t empty[1];
    return s1_st_parse_header(f->map ? f->map : empty, f->size, f->path, &f->h, err);
}

/* Appends dir/name to the files and maps it. */
static int add_file(s1_model_files *mf, const char *dir, const char *name, s1_err *err)
{
    st_file *grown = realloc(mf->files, (mf->n + 1) * sizeof *grown);
    if (!grown) return s1_errf(err, "out of memory");
    mf->files = grown;
    st_file *f = &mf->files[mf->n];
    *f = (st_file){0};
    f->path = join(dir, name);
    if (!f->path) return s1_errf(err, "out of memory");
    f->base = f->path + strlen(dir) + 1;
    mf->n++;
    return map_file(f, err);
}

static st_file *file_named(s1_model_files *mf, const char *name)
{
    for (size_t i = 0; i < mf->n; i++)
        if (!strcmp(mf->files[i].base, name)) return &mf->files[i];
    return NULL;
}

/* Opens each shard the index names once; a name that is not a plain file
 * name in dir, or a shard that does not exist, is an error in the index. */
static int open_shards(s1_model_files *mf, const char *dir, s1_err *err)
{
    const char *tensor;
    json_t *v;
    json_object_foreach(mf->weight_map, tensor, v)
    {
        const char *name = json_string_value(v);
        if (!name || !*name || strchr(name, '/'))
            return s1_errf(err,
                           "%s: weight_map entry for %s is not a file name in the model directory",
                           mf->index_path, tensor);
        if (file_named(mf, name)) continue;
        _cleanup_free_ char *path = join(dir, name);
        if (!path) return s1_errf(err, "out of memory");
        if (access(path, F_OK) < 0)
            return s1_errf(err, "%s: shard %s (holding %s) does not exist in %s", mf->index_path,
                           name, tensor, dir);
        if (add_file(mf, dir, name, err) < 0) return -1;
    }
    return 0;
}

/* Reads model.safetensors.index.json; its weight_map is kept to find each
 * tensor's shard. */
static int open_index(s1_model_files *mf, const char *dir, s1_err *err)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    if (s1_read_file(mf->index_path, INDEX_MAX_BYTES, &text, &len, err) < 0) return -1;
    json_error_t jerr;
    json_auto_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return s1_errf(err, "%s: invalid JSON at line %d: %s", mf->index_path, jerr.line,
                       jerr.text);
    json_t *map = json_object_get(root, "weight_map");
    if (!json_is_object(map))
        return s1_errf(err, "%s: weight_map is missing or not an object", mf->index_path);
    mf->weight_map = json_incref(map);
    return open_shards(mf, dir, err);
}

/* model.safetensors when present, else the shards of the index: the order
 * transformers uses, so a directory holding both loads the same weights. */
static int open_weights(s1_model_files *mf, const char *dir, s1_err *err)
{
    _cleanup_free_ char *single = join(dir, "model.safetensors");
    mf->index_path = join(dir, "model.safetensors.index.json");
    if (!single || !mf->index_path) return s1_errf(err, "out of memory");
    if (access(single, F_OK) == 0) {
        free(mf->index_path);
        mf->index_path = NULL;
        return add_file(mf, dir, "model.safetensors", err);
    }
    if (access(mf->index_path, F_OK) == 0) return open_index(mf, dir, err);
    return s1_errf(err,
                   "model directory %s: no model.safetensors or model.safetensors.index.json; s1d "
                   "loads safetensors weights",
                   dir);
}

/* The file holding tensor name (per the index when there is one) and its
 * header entry. */
static int locate(s1_model_files *mf, const char *name, st_file **file, const s1_st_tensor **t,
                  s1_err *err)
{
    st_file *f = &mf->files[0];
    if (mf->weight_map) {
        const char *shard = json_string_value(json_object_get(mf->weight_map, name));
        if (!shard)
            return s1_errf(err, "%s: tensor %s is missing from weight_map", mf->index_path, name);
        f = file_named(mf, shard);
    }
    *t = s1_st_find(&f->h, name);
    if (!*t) return s1_errf(err, "%s: tensor %s is missing", f->path, name);
    *file = f;
    return 0;
}

/* Binds out to tensor name, which must have shape [d0] (d1 == 0) or [d0, d1]. */
static int bind(s1_model_files *mf, const char *name, int64_t d0, int64_t d1, s1_tensor *out,
                s1_err *err)
{
    st_file *f = NULL;
    const s1_st_tensor *t = NULL;
    if (locate(mf, name, &f, &t, err) < 0) return -1;
    int ndim = d1 ? 2 : 1;
    if (t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1)) {
        char found[128], expected[64];
        s1_st_shape_str(t, found, sizeof found);
        if (ndim == 2)
            snprintf(expected, sizeof expected, "[%lld, %lld]", (long long)d0, (long long)d1);
        else
            snprintf(expected, sizeof expected, "[%lld]", (long long)d0);
        return s1_errf(err, "%s: tensor %s has shape %s, expected %s from config.json", f->path,
                       name, found, expected);
    }
    *out = (s1_tensor){
        .data = f->map + f->h.data_start + t->begin,
        .dtype = t->dtype,
        .rows = ndim == 2 ? d0 : 1,
        .cols = ndim == 2 ? d1 : d0,
        .row_stride = ndim == 2 ? d1 : d0,
    };
    return 0;
}

enum { D_NONE, D_HIDDEN, D_Q, D_KV, D_INTER };

/* The tensors of one decoder layer: HF name, field, shape in config terms. */
static const struct {
    const char *suffix;
    size_t field;
    int d0, d1;
} layer_tensors[] = {
    {"input_layernorm.weight", offsetof(s1_layer, attn_norm), D_HIDDEN, D_NONE},
    {"self_attn.q_proj.weight", offsetof(s1_layer, wq), D_Q, D_HIDDEN},
    {"self_attn.q_proj.bias", offsetof(s1_layer, bq), D_Q, D_NONE},
    {"self_attn.k_proj.weight", offsetof(s1_layer, wk), D_KV, D_HIDDEN},
    {"self_attn.k_proj.bias", offsetof(s1_layer, bk), D_KV, D_NONE},
    {"self_attn.v_proj.weight", offsetof(s1_layer, wv), D_KV, D_HIDDEN},
    {"self_attn.v_proj.bias", offsetof(s1_layer, bv), D_KV, D_NONE},
    {"self_attn.o_proj.weight", offsetof(s1_layer, wo), D_HIDDEN, D_Q},
    {"post_attention_layernorm.weight", offsetof(s1_layer, mlp_norm), D_HIDDEN, D_NONE},
    {"mlp.gate_proj.weight", offsetof(s1_layer, w_gate), D_INTER, D_HIDDEN},
    {"mlp.up_proj.weight", offsetof(s1_layer, w_up), D_INTER, D_HIDDEN},
    {"mlp.down_proj.weight", offsetof(s1_layer, w_down), D_HIDDEN, D_INTER},
};

static int64_t dim(const s1_model_config *c, int d)
{
    switch (d) {
    case D_HIDDEN:
        return c->hidden_size;
    case D_Q:
        return (int64_t)c->n_heads * c->head_dim;
    case D_KV:
        return (int64_t)c->n_kv_heads * c->head_dim;
    case D_INTER:
        return c->intermediate_size;
    }
    return 0;
}

static int bind_layer(s1_model *m, int i, s1_err *err)
{
    for (size_t k = 0; k < sizeof layer_tensors / sizeof *layer_tensors; k++) {
        char name[128];
        snprintf(name, sizeof name, "model.layers.%d.%s", i, layer_tensors[k].suffix);
        s1_tensor *out = (s1_tensor *)((char *)&m->w.layers[i] + layer_tensors[k].field);
        if (bind(m->files, name, dim(&m->cfg, layer_tensors[k].d0),
                 dim(&m->cfg, layer_tensors[k].d1), out, err) < 0)
            return -1;
    }
    return 0;
}

/* Binds every weight of the architecture, checking each shape against the
 * config; a tied model's lm_head is the embedding (no lm_head.weight read). */
static int bind_weights(s1_model *m, s1_err *err)
{
    const s1_model_config *c = &m->cfg;
    if (bind(m->files, "model.embed_tokens.weight", c->vocab_size, c->hidden_size, &m->w.embed,
             err) < 0)
        return -1;
    m->w.layers = calloc((size_t)c->n_layers, sizeof *m->w.layers);
    if (!m->w.layers) return s1_errf(err, "out of memory");
    for (int i = 0; i < c->n_layers; i++)
        if (bind_layer(m, i, err) < 0) return -1;
    if (bind(m->files, "model.norm.weight", c->hidden_size, 0, &m->w.final_norm, err) < 0)
        return -1;
    if (c->tie_word_embeddings) {
        m->w.lm_head = m->w.embed;
        return 0;
    }
    return bind(m->files, "lm_head.weight", c->vocab_size, c->hidden_size, &m->w.lm_head, err);
}

static void log_loaded(const s1_model *m)
{
    const s1_model_config *c = &m->cfg;
    size_t bytes = 0;
    for (size_t i = 0; i < m->files->n; i++)
        bytes += m->files->files[i].size;
    log_info(
        "model %s: %d layers, hidden %d, %d heads (%d kv), vocab %d, %s, %.1f MB in %zu file%s",
        m->dir, c->n_layers, c->hidden_size, c->n_heads, c->n_kv_heads, c->vocab_size,
        s1_dtype_name(c->dtype), bytes / 1e6, m->files->n, m->files->n == 1 ? "" : "s");
}

s1_model *s1_model_load(const char *dir, s1_err *err)
{
    if (check_dir(dir, err) < 0) return NULL;
    s1_model *m = calloc(1, sizeof *m);
    if (!m) {
        s1_errf(err, "out of memory");
        return NULL;
    }
    m->dir = strdup(dir);
    m->files = calloc(1, sizeof *m->files);
    if (!m->dir || !m->files) {
        s1_errf(err, "out of memory");
        goto fail;
    }
    if (load_config(dir, &m->cfg, err) < 0 || open_weights(m->files, dir, err) < 0 ||
        bind_weights(m, err) < 0)
        goto fail;
    log_loaded(m);
    return m;
fail:
    s1_model_free(m);
    return NULL;
}

static void files_free(s1_model_files *mf)
{
    for (size_t i = 0; i < mf->n; i++) {
        st_file *f = &mf->files[i];
        if (f->map) munmap(f->map, f->size);
        s1_st_header_free(&f->h);
        free(f->path);
    }
    free(mf->files);
    free(mf->index_path);
    json_decref(mf->weight_map);
    free(mf);
}

void s1_model_free(s1_model *m)
{
    if (!m) return;
    if (m->files) files_free(m->files);
    free(m->w.layers);
    free(m->dir);
    free(m);
}
