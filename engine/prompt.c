#include "prompt.h"

#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

typedef struct {
    int32_t *ids; /* owned */
    size_t n;
} id_buf;

/* Encodes text and appends it to b; special says whether markup in the text
 * becomes special tokens. */
static int append(const s1_tokenizer *t, id_buf *b, const char *text, size_t len, int special,
                  s1_err *err)
{
    _cleanup_free_ int32_t *ids = NULL;
    size_t n = 0;
    if (s1_tokenizer_encode(t, text, len, special, &ids, &n, err) < 0) return -1;
    int32_t *grown = realloc(b->ids, sizeof *grown * (b->n + n + 1));
    if (!grown) return s1_errf(err, "prompt: out of memory");
    if (n) memcpy(grown + b->n, ids, sizeof *ids * n);
    b->ids = grown;
    b->n += n;
    return 0;
}

/* Appends markup, its special tokens matched; "" appends nothing. */
static int append_markup(const s1_tokenizer *t, id_buf *b, const char *markup, s1_err *err)
{
    return *markup ? append(t, b, markup, strlen(markup), 1, err) : 0;
}

/* The chat markup a tokenizer speaks: Qwen's, or DeepSeek's, which the
 * DeepSeek-R1-Distill-Qwen models keep on the Qwen2 architecture. */
typedef struct {
    const char *begin;                    /* once, first */
    const char *system_open, *system_end; /* around the system text */
    const char *user_open, *user_end;     /* around the problem */
    const char *assistant;                /* opens the model's turn */
    const char *eos;                      /* ends it */
} chat_markup;

static const chat_markup qwen_markup = {"",
                                        "<|im_start|>system\n",
                                        "<|im_end|>\n",
                                        "<|im_start|>user\n",
                                        "<|im_end|>\n",
                                        "<|im_start|>assistant\n",
                                        "<|im_end|>"};
static const chat_markup deepseek_markup = {"<\uff5cbegin\u2581of\u2581sentence\uff5c>",
                                            "",
                                            "",
                                            "<\uff5cUser\uff5c>",
                                            "",
                                            "<\uff5cAssistant\uff5c>",
                                            "<\uff5cend\u2581of\u2581sentence\uff5c>"};

/* Qwen's markup where the tokenizer has <|im_end|>, else DeepSeek's where it
 * has its turn tokens; NULL with err for a tokenizer with neither. */
static const chat_markup *markup_of(const s1_tokenizer *t, s1_err *err)
{
    if (s1_tokenizer_token_id(t, qwen_markup.eos) >= 0) return &qwen_markup;
    const chat_markup *d = &deepseek_markup;
    if (s1_tokenizer_token_id(t, d->eos) >= 0 && s1_tokenizer_token_id(t, d->user_open) >= 0 &&
        s1_tokenizer_token_id(t, d->assistant) >= 0 && s1_tokenizer_token_id(t, d->begin) >= 0)
        return d;
    s1_errf(err, "tokenizer.json has no <|im_end|> token (nor DeepSeek's chat tokens): is this a "
                 "Qwen2 model directory?");
    return NULL;
}

/* What differs between templates: how the model's turn opens and the
 * defaults of the policy's strings. Markup strings may hold special tokens;
 * must_have lists those the tokenizer needs as single tokens. */
typedef struct {
    const char *name;
    const char *system;        /* default system text; NULL: no system turn */
    const char *opening;       /* after the model's turn opened: its thinking opened */
    const char *think_end;     /* the delimiter */
    const char *answer_header; /* fed after a forced delimiter */
    const char *must_have[2];
} prompt_template;

static const prompt_template templates[] = {
    [S1_TEMPLATE_S1] = {"s1",
                        S1_DEFAULT_SYSTEM,
                        "<|im_start|>think\n",
                        S1_DEFAULT_THINK_END,
                        S1_DEFAULT_ANSWER_HEADER,
                        {"<|im_start|>", NULL}},
    [S1_TEMPLATE_THINK_TAGS] =
        {"think-tags", NULL, "<think>\n", "</think>", "\n\n", {"</think>", "<think>"}},
};

/* S1_TEMPLATE_DEFAULT, which the engine resolves before this, reads as s1. */
static s1_template template_in(const s1_policy_cfg *cfg)
{
    return cfg->template == S1_TEMPLATE_THINK_TAGS ? S1_TEMPLATE_THINK_TAGS : S1_TEMPLATE_S1;
}

int s1_prompt_render(const s1_tokenizer *t, const s1_policy_cfg *cfg, const char *problem,
                     size_t problem_len, int32_t **ids, size_t *n_ids, s1_err *err)
{
    const chat_markup *m = markup_of(t, err);
    if (!m) return -1;
    const prompt_template *tpl = &templates[template_in(cfg)];
    const char *system = cfg->system ? cfg->system : tpl->system;
    id_buf b = {0};
    if (append_markup(t, &b, m->begin, err) < 0 ||
        (system && (append_markup(t, &b, m->system_open, err) < 0 ||
                    append(t, &b, system, strlen(system), 0, err) < 0 ||
                    append_markup(t, &b, m->system_end, err) < 0)) ||
        append_markup(t, &b, m->user_open, err) < 0 ||
        append(t, &b, problem, problem_len, 0, err) < 0 ||
        append_markup(t, &b, m->user_end, err) < 0 || append_markup(t, &b, m->assistant, err) < 0 ||
        append_markup(t, &b, tpl->opening, err) < 0) {
        free(b.ids);
        return -1;
    }
    *ids = b.ids;
    *n_ids = b.n;
    return 0;
}

/* Encodes text with added tokens matched: *n is how many tokens it makes,
 * *id the first. */
static int encode_markup(const s1_tokenizer *t, const char *text, int32_t *id, size_t *n,
                         s1_err *err)
{
    _cleanup_free_ int32_t *ids = NULL;
    if (s1_tokenizer_encode(t, text, strlen(text), 1, &ids, n, err) < 0) return -1;
    *id = *n ? ids[0] : -1;
    return 0;
}

/* A template's markup must be single tokens: a tokenizer without them would
 * spell the tags out in pieces the model never learned, and budget forcing
 * would watch for a delimiter the model cannot emit. */
static int check_markup(const s1_tokenizer *t, s1_template which, s1_err *err)
{
    const prompt_template *tpl = &templates[which];
    const char *other = which == S1_TEMPLATE_S1 ? "think-tags" : "s1";
    for (int i = 0; i < 2 && tpl->must_have[i]; i++) {
        int32_t id;
        size_t n;
        if (encode_markup(t, tpl->must_have[i], &id, &n, err) < 0) return -1;
        if (n != 1)
            return s1_errf(err,
                           "the %s template needs %s as one token, but this model's tokenizer "
                           "makes it %zu: use the %s template, or a model whose tokenizer has it "
                           "(docs/models.md)",
                           tpl->name, tpl->must_have[i], n, other);
    }
    return 0;
}

/* A delimiter given by the job (--think-end) must be one token too. */
static int think_end_id(const s1_tokenizer *t, const char *think_end, int32_t *id, s1_err *err)
{
    size_t n;
    if (encode_markup(t, think_end, id, &n, err) < 0) return -1;
    if (n != 1)
        return s1_errf(err,
                       "policy.think_end \"%s\" is %zu tokens: it must be exactly one "
                       "(e.g. <|im_start|>)",
                       think_end, n);
    return 0;
}

int s1_prompt_template_choose(const s1_tokenizer *t, s1_template want, s1_template *out,
                              s1_err *err)
{
    if (want == S1_TEMPLATE_DEFAULT) {
        s1_err ignored;
        want = check_markup(t, S1_TEMPLATE_THINK_TAGS, &ignored) == 0 ? S1_TEMPLATE_THINK_TAGS
                                                                      : S1_TEMPLATE_S1;
    }
    if (check_markup(t, want, err) < 0) return -1;
    *out = want;
    return 0;
}

int s1_prompt_vocab_build(const s1_tokenizer *t, const s1_policy_cfg *cfg, int raw,
                          s1_prompt_vocab *pv, s1_err *err)
{
    *pv = (s1_prompt_vocab){0};
    s1_vocab *v = &pv->v;
    const chat_markup *m = markup_of(t, err);
    if (!m) return -1;
    v->eos = s1_tokenizer_token_id(t, m->eos);
    v->eos_alt = raw && m == &qwen_markup ? s1_tokenizer_token_id(t, "<|endoftext|>") : -1;
    const prompt_template *tpl = &templates[template_in(cfg)];
    if (check_markup(t, template_in(cfg), err) < 0) return -1;
    const char *think_end = cfg->think_end ? cfg->think_end : tpl->think_end;
    const char *wait = cfg->wait_string ? cfg->wait_string : S1_DEFAULT_WAIT_STRING;
    const char *header = cfg->answer_header ? cfg->answer_header : tpl->answer_header;
    const char *prefix = cfg->answer_prefix ? cfg->answer_prefix : S1_DEFAULT_ANSWER_PREFIX;
    _cleanup_free_ char *answer = malloc(strlen(header) + strlen(prefix) + 1);
    if (!answer) return s1_errf(err, "prompt: out of memory");
    strcpy(answer, header);
    strcat(answer, prefix);

    id_buf w = {0}, a = {0};
    if (think_end_id(t, think_end, &v->think_end, err) < 0 ||
        append(t, &w, wait, strlen(wait), 0, err) < 0 ||
        append(t, &a, answer, strlen(answer), 0, err) < 0) {
        free(w.ids);
        free(a.ids);
        return -1;
    }
    pv->wait = w.ids;
    pv->answer_start = a.ids;
    v->wait = w.ids;
    v->n_wait = (int)w.n;
    v->answer_start = a.ids;
    v->n_answer_start = (int)a.n;
    return 0;
}

void s1_prompt_vocab_free(s1_prompt_vocab *pv)
{
    free(pv->wait);
    free(pv->answer_start);
    *pv = (s1_prompt_vocab){0};
}
