/* engine/model.h — a Qwen2 model as published on Hugging Face: config.json
 * and safetensors weights, mmap'ed (bf16, f16 or f32); the CUDA backend
 * uploads from the mapping, the CPU backend copies what it multiplies by
 * (engine/cpu/place.h). The structs mirror the architecture so the forward pass reads like it. */
#ifndef S1_MODEL_H
#define S1_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef enum { S1_DTYPE_F32, S1_DTYPE_F16, S1_DTYPE_BF16 } s1_dtype;

/* A 1-D or 2-D view of a weight (1-D: rows = 1). Row r starts at
 * data + r * row_stride elements. Tensor-parallel shards are views into the
 * same mmap, so row_stride may exceed cols. */
typedef struct {
    const void *data;
    s1_dtype dtype;
    int64_t rows, cols;
    int64_t row_stride;
} s1_tensor;

typedef struct {
    char architecture[64]; /* "Qwen2ForCausalLM" */
    int vocab_size;        /* rows of the embedding; may exceed the tokenizer's */
    int hidden_size;
    int intermediate_size;
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;     /* hidden_size / n_heads */
    int max_position; /* max_position_embeddings */
    float rms_norm_eps;
    float rope_theta;
    bool tie_word_embeddings;
    s1_dtype dtype; /* torch_dtype, the weights' dtype on disk */
} s1_model_config;

/* One decoder layer; HF layout, weights are [out_features, in_features]. */
typedef struct {
    s1_tensor attn_norm;    /* [hidden]                 input_layernorm */
    s1_tensor wq, bq;       /* [heads*hd, hidden], [heads*hd] */
    s1_tensor wk, bk;       /* [kv*hd, hidden], [kv*hd] */
    s1_tensor wv, bv;       /* [kv*hd, hidden], [kv*hd] */
    s1_tensor wo;           /* [hidden, heads*hd] */
    s1_tensor mlp_norm;     /* [hidden]                 post_attention_layernorm */
    s1_tensor w_gate, w_up; /* [inter, hidden] */
    s1_tensor w_down;       /* [hidden, inter] */
} s1_layer;

typedef struct {
    s1_tensor embed;      /* [vocab, hidden] */
    s1_layer *layers;     /* [n_layers], owned by the s1_model */
    s1_tensor final_norm; /* [hidden] */
    s1_tensor lm_head;    /* [vocab, hidden]; the embedding when tied */
} s1_weights;

typedef struct s1_model_files s1_model_files;

typedef struct {
    s1_model_config cfg;
    s1_weights w;
    char *dir;             /* owned */
    s1_model_files *files; /* the mmaps, owned */
} s1_model;

/* Loads dir/config.json and dir/model.safetensors (or the shards listed in
 * dir/model.safetensors.index.json). Every tensor is checked against the
 * config's shapes; the error names the file and what is wrong. */
s1_model *s1_model_load(const char *dir, s1_err *err);
void s1_model_free(s1_model *m);

/* Inline, so that the CUDA module (which has no model loader) has it too. */
static inline size_t s1_dtype_size(s1_dtype t)
{
    return t == S1_DTYPE_F32 ? 4 : 2;
}
const char *s1_dtype_name(s1_dtype t);

#endif
