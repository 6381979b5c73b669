/* model_dump DIR [OUT] — loads a model directory with s1_model_load, for the
 * Python tests. On failure prints the error line to stderr and exits 1. On
 * success prints the config and one line per weight ("name dtype rows cols
 * row_stride") and, with OUT, writes each weight's rows as raw bytes in that
 * order, read through the s1_tensor views. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "cleanup.h"
#include "model.h"

static int dump(FILE *out, const char *name, const s1_tensor *t)
{
    printf("%s %s %" PRId64 " %" PRId64 " %" PRId64 "\n", name, s1_dtype_name(t->dtype), t->rows,
           t->cols, t->row_stride);
    if (!out) return 0;
    size_t es = s1_dtype_size(t->dtype);
    for (int64_t r = 0; r < t->rows; r++) {
        const char *row = (const char *)t->data + (size_t)(r * t->row_stride) * es;
        if (fwrite(row, es, (size_t)t->cols, out) != (size_t)t->cols) return -1;
    }
    return 0;
}

static const char *const layer_names[] = {
    "input_layernorm.weight",  "self_attn.q_proj.weight", "self_attn.q_proj.bias",
    "self_attn.k_proj.weight", "self_attn.k_proj.bias",   "self_attn.v_proj.weight",
    "self_attn.v_proj.bias",   "self_attn.o_proj.weight", "post_attention_layernorm.weight",
    "mlp.gate_proj.weight",    "mlp.up_proj.weight",      "mlp.down_proj.weight",
};

static int dump_all(const s1_model *m, FILE *out)
{
    const s1_model_config *c = &m->cfg;
    printf("config %s vocab=%d hidden=%d inter=%d layers=%d heads=%d kv=%d head_dim=%d max_pos=%d "
           "eps=%g theta=%g tie=%d dtype=%s\n",
           c->architecture, c->vocab_size, c->hidden_size, c->intermediate_size, c->n_layers,
           c->n_heads, c->n_kv_heads, c->head_dim, c->max_position, c->rms_norm_eps, c->rope_theta,
           c->tie_word_embeddings, s1_dtype_name(c->dtype));
    int rc = dump(out, "model.embed_tokens.weight", &m->w.embed);
    for (int i = 0; i < c->n_layers && !rc; i++) {
        const s1_layer *l = &m->w.layers[i];
        const s1_tensor *ts[] = {&l->attn_norm, &l->wq,     &l->bq,   &l->wk,
                                 &l->bk,        &l->wv,     &l->bv,   &l->wo,
                                 &l->mlp_norm,  &l->w_gate, &l->w_up, &l->w_down};
        for (size_t k = 0; k < sizeof ts / sizeof *ts && !rc; k++) {
            char name[128];
            snprintf(name, sizeof name, "model.layers.%d.%s", i, layer_names[k]);
            rc = dump(out, name, ts[k]);
        }
    }
    if (!rc) rc = dump(out, "model.norm.weight", &m->w.final_norm);
    if (!rc) rc = dump(out, "lm_head.weight", &m->w.lm_head);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: model_dump DIR [OUT]\n");
        return 2;
    }
    s1_err err = {{0}};
    s1_model *m = s1_model_load(argv[1], &err);
    if (!m) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    _cleanup_fclose_ FILE *out = argc == 3 ? fopen(argv[2], "wb") : NULL;
    int rc = argc == 3 && !out ? -1 : dump_all(m, out);
    s1_model_free(m);
    if (rc < 0) perror(argv[2]);
    return rc < 0 ? 1 : 0;
}
