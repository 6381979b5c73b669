#include "model_config.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* HF writes null for some unset optional keys; treat it as absent. */
static const json_t *get(const json_t *root, const char *key)
{
    const json_t *v = json_object_get(root, key);
    return json_is_null(v) ? NULL : v;
}

/* A positive int; an absent key takes dflt, or fails when dflt is 0. */
static int get_pos_int(const json_t *root, const char *path, const char *key, int dflt, int *out,
                       s1_err *err)
{
    const json_t *v = get(root, key);
    if (!v) {
        if (!dflt) return s1_errf(err, "%s: missing key %s", path, key);
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v)) return s1_errf(err, "%s: %s must be an integer", path, key);
    json_int_t x = json_integer_value(v);
    if (x <= 0 || x > INT_MAX)
        return s1_errf(err, "%s: %s is %lld, must be a positive integer below 2^31", path, key,
                       (long long)x);
    *out = (int)x;
    return 0;
}

/* A positive finite number; an absent key takes dflt, or fails when dflt is 0. */
static int get_pos_float(const json_t *root, const char *path, const char *key, double dflt,
                         float *out, s1_err *err)
{
    const json_t *v = get(root, key);
    if (!v) {
        if (dflt == 0) return s1_errf(err, "%s: missing key %s", path, key);
        *out = (float)dflt;
        return 0;
    }
    if (!json_is_number(v)) return s1_errf(err, "%s: %s must be a number", path, key);
    double x = json_number_value(v);
    float f = (float)x;
    if (!(f > 0) || !isfinite(f))
        return s1_errf(err, "%s: %s is %g, must be a positive number", path, key, x);
    *out = f;
    return 0;
}

static int get_bool(const json_t *root, const char *path, const char *key, bool *out, s1_err *err)
{
    const json_t *v = get(root, key);
    if (!v) return 0;
    if (!json_is_boolean(v)) return s1_errf(err, "%s: %s must be true or false", path, key);
    *out = json_is_true(v);
    return 0;
}

static int check_architecture(const json_t *root, const char *path, s1_model_config *cfg,
                              s1_err *err)
{
    const json_t *a = get(root, "architectures");
    if (!a) return s1_errf(err, "%s: missing key architectures", path);
    if (!json_is_array(a))
        return s1_errf(err, "%s: architectures must be an array of strings", path);
    for (size_t i = 0; i < json_array_size(a); i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (!s) return s1_errf(err, "%s: architectures must be an array of strings", path);
        if (!strcmp(s, "Qwen2ForCausalLM")) {
            snprintf(cfg->architecture, sizeof cfg->architecture, "%s", s);
            return 0;
        }
    }
    const char *first = json_string_value(json_array_get(a, 0));
    return s1_errf(err, "%s: unsupported architecture %.64s; s1d runs Qwen2ForCausalLM models",
                   path, first ? first : "(none)");
}

/* torch_dtype; newer transformers write it as dtype. */
static int get_dtype(const json_t *root, const char *path, s1_dtype *out, s1_err *err)
{
    const json_t *v = get(root, "torch_dtype");
    if (!v) v = get(root, "dtype");
    if (!v) return s1_errf(err, "%s: missing key torch_dtype", path);
    const char *s = json_string_value(v);
    if (!s) return s1_errf(err, "%s: torch_dtype must be a string", path);
    if (!strcmp(s, "bfloat16"))
        *out = S1_DTYPE_BF16;
    else if (!strcmp(s, "float16"))
        *out = S1_DTYPE_F16;
    else if (!strcmp(s, "float32"))
        *out = S1_DTYPE_F32;
    else
        return s1_errf(
            err,
            "%s: torch_dtype %.32s is not supported; s1d runs bfloat16, float16 and float32 models",
            path, s);
    return 0;
}

/* Options that change the math s1d does not implement are refused by name. */
static int check_unsupported(const json_t *root, const char *path, s1_err *err)
{
    if (get(root, "rope_scaling"))
        return s1_errf(err, "%s: rope_scaling is set; s1d supports only rope_scaling null", path);
    bool sliding = false;
    if (get_bool(root, path, "use_sliding_window", &sliding, err) < 0) return -1;
    if (sliding)
        return s1_errf(err, "%s: use_sliding_window is true; s1d supports only full attention",
                       path);
    return 0;
}

static int get_fields(const json_t *root, const char *path, s1_model_config *c, s1_err *err)
{
    if (get_pos_int(root, path, "hidden_size", 0, &c->hidden_size, err) < 0 ||
        get_pos_int(root, path, "intermediate_size", 0, &c->intermediate_size, err) < 0 ||
        get_pos_int(root, path, "num_hidden_layers", 0, &c->n_layers, err) < 0 ||
        get_pos_int(root, path, "num_attention_heads", 0, &c->n_heads, err) < 0 ||
        get_pos_int(root, path, "num_key_value_heads", c->n_heads, &c->n_kv_heads, err) < 0 ||
        get_pos_int(root, path, "vocab_size", 0, &c->vocab_size, err) < 0 ||
        get_pos_int(root, path, "max_position_embeddings", 0, &c->max_position, err) < 0 ||
        get_pos_float(root, path, "rms_norm_eps", 0, &c->rms_norm_eps, err) < 0 ||
        get_pos_float(root, path, "rope_theta", 10000.0, &c->rope_theta, err) < 0 ||
        get_bool(root, path, "tie_word_embeddings", &c->tie_word_embeddings, err) < 0)
        return -1;
    return get_dtype(root, path, &c->dtype, err);
}

static int check_shapes(const char *path, s1_model_config *c, s1_err *err)
{
    if (c->hidden_size % c->n_heads)
        return s1_errf(err, "%s: hidden_size %d is not a multiple of num_attention_heads %d", path,
                       c->hidden_size, c->n_heads);
    if (c->n_heads % c->n_kv_heads)
        return s1_errf(err,
                       "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                       path, c->n_heads, c->n_kv_heads);
    c->head_dim = c->hidden_size / c->n_heads;
    if (c->head_dim % 2)
        return s1_errf(
            err,
            "%s: head dimension %d (hidden_size / num_attention_heads) is odd; RoPE needs it even",
            path, c->head_dim);
    return 0;
}

int s1_model_config_parse(const char *json, size_t len, const char *path, s1_model_config *cfg,
                          s1_err *err)
{
    *cfg = (s1_model_config){0};
    json_error_t jerr;
    json_auto_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return s1_errf(err, "%s: invalid JSON at line %d: %s", path, jerr.line, jerr.text);
    if (!json_is_object(root)) return s1_errf(err, "%s: not a JSON object", path);
    if (check_architecture(root, path, cfg, err) < 0 || get_fields(root, path, cfg, err) < 0 ||
        check_unsupported(root, path, err) < 0)
        return -1;
    return check_shapes(path, cfg, err);
}
