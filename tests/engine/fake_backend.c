#include "fake_backend.h"

#include <stdlib.h>
#include <string.h>

#include "backend.h"

fake_knobs fake_backend_knobs = {.boost_id = -1, .boost2_id = -1, .quiet = {-1, -1, -1, -1}};
fake_stats fake_backend_stats;

typedef struct {
    s1_backend head;
    int n_real;        /* rows below this are the tokenizer's; above, padding */
    int32_t *slot_tok; /* [n_blocks * block_size], owned */
    int32_t *slot_pos; /* [n_blocks * block_size], owned; -1 = never written */
} fake;

static int32_t *slot(const fake *f, int32_t *arr, const s1_block_table *t, int pos, s1_err *err)
{
    int bs = f->head.block_size, i = pos / bs;
    if (i >= t->n_blocks || t->blocks[i] < 0 || t->blocks[i] >= f->head.n_blocks) {
        s1_errf(err, "fake backend: position %d has no valid block", pos);
        return NULL;
    }
    return &arr[(size_t)t->blocks[i] * bs + pos % bs];
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 31);
}

/* The history of the row's sequence, read back from the cache. */
static int history_hash(const fake *f, const s1_block_table *t, int pos, uint64_t *h, s1_err *err)
{
    *h = 1;
    for (int q = 0; q <= pos; q++) {
        int32_t *p = slot(f, f->slot_pos, t, q, err);
        if (!p) return -1;
        if (*p != q)
            return s1_errf(err, "fake backend: position %d reads a slot written for %d", q, *p);
        *h = mix(*h, (uint64_t)*slot(f, f->slot_tok, t, q, err));
    }
    return 0;
}

static void fill_logits(const fake *f, uint64_t h, float *row)
{
    uint64_t x = h;
    for (int j = 0; j < f->head.vocab_size; j++) {
        x = mix(x, (uint64_t)j);
        row[j] = j < f->n_real ? (float)(x >> 40) / (float)(1 << 24) * 4.0f - 2.0f : 1000.0f;
    }
    const fake_knobs *k = &fake_backend_knobs;
    for (int i = 0; i < 4; i++)
        if (k->quiet[i] >= 0 && k->quiet[i] < f->head.vocab_size) row[k->quiet[i]] = -10;
    if (k->boost_id >= 0 && h % (uint64_t)k->boost_every == 0) row[k->boost_id] = 50;
    if (k->boost2_id >= 0 && (h >> 20) % (uint64_t)k->boost2_every == 0) row[k->boost2_id] = 60;
}

static int fake_forward(s1_backend *b, const s1_batch *batch, s1_err *err)
{
    fake *f = (fake *)b;
    fake_stats *st = &fake_backend_stats;
    st->forwards++;
    st->tokens += batch->n_tokens;
    if (batch->n_tokens > st->max_tokens) st->max_tokens = batch->n_tokens;
    if (batch->n_seqs > st->max_seqs) st->max_seqs = batch->n_seqs;
    for (int i = 0; i < batch->n_tokens; i++) {
        const s1_block_table *t = &batch->tables[batch->seq[i]];
        int32_t *tok = slot(f, f->slot_tok, t, batch->pos[i], err);
        if (!tok) return -1;
        *tok = batch->tokens[i];
        *slot(f, f->slot_pos, t, batch->pos[i], err) = batch->pos[i];
    }
    for (int k = 0; k < batch->n_out; k++) {
        int row = batch->out_rows[k];
        uint64_t h;
        if (history_hash(f, &batch->tables[batch->seq[row]], batch->pos[row], &h, err) < 0)
            return -1;
        fill_logits(f, h, batch->logits + (size_t)k * b->vocab_size);
    }
    return 0;
}

static int fake_copy_block(s1_backend *b, int32_t src, int32_t dst, s1_err *err)
{
    (void)err;
    fake *f = (fake *)b;
    size_t bs = (size_t)b->block_size;
    memcpy(f->slot_tok + dst * bs, f->slot_tok + src * bs, bs * sizeof *f->slot_tok);
    memcpy(f->slot_pos + dst * bs, f->slot_pos + src * bs, bs * sizeof *f->slot_pos);
    fake_backend_stats.copies++;
    return 0;
}

static void fake_destroy(s1_backend *b)
{
    fake *f = (fake *)b;
    free(f->slot_tok);
    free(f->slot_pos);
    free(f);
}

static const s1_backend_ops fake_ops = {fake_forward, fake_copy_block, fake_destroy};

/* Replaces the library's dispatcher in the test programs that link this file. */
s1_backend *s1_backend_open(const char *name, const s1_model *m, const s1_backend_cfg *cfg,
                            s1_err *err)
{
    (void)name;
    fake *f = calloc(1, sizeof *f);
    if (!f) {
        s1_errf(err, "fake backend: out of memory");
        return NULL;
    }
    int n_blocks = cfg->n_blocks > 0 ? cfg->n_blocks : 512;
    size_t slots = (size_t)n_blocks * (size_t)cfg->block_size;
    f->head = (s1_backend){.ops = &fake_ops,
                           .name = "fake",
                           .n_blocks = n_blocks,
                           .block_size = cfg->block_size,
                           .vocab_size = m->cfg.vocab_size};
    /* gen_model.py pads the embedding by at least 64 rows past the tokenizer's ids. */
    f->n_real = m->cfg.vocab_size - 64;
    f->slot_tok = malloc(slots * sizeof *f->slot_tok);
    f->slot_pos = malloc(slots * sizeof *f->slot_pos);
    if (!f->slot_tok || !f->slot_pos) {
        fake_destroy(&f->head);
        s1_errf(err, "fake backend: out of memory");
        return NULL;
    }
    memset(f->slot_pos, 0xff, slots * sizeof *f->slot_pos);
    return &f->head;
}
