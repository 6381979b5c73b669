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

int s1_prompt_s1(const s1_tokenizer *t, const char *system, const char *problem, size_t problem_len,
                 int32_t **ids, size_t *n_ids, s1_err *err)
{
    static const char *const head = "<|im_start|>system\n";
    static const char *const mid = "<|im_end|>\n<|im_start|>user\n";
    static const char *const tail = "<|im_end|>\n<|im_start|>assistant\n<|im_start|>think\n";
    if (!system) system = S1_DEFAULT_SYSTEM;
    id_buf b = {0};
    if (append(t, &b, head, strlen(head), 1, err) < 0 ||
        append(t, &b, system, strlen(system), 0, err) < 0 ||
        append(t, &b, mid, strlen(mid), 1, err) < 0 ||
        append(t, &b, problem, problem_len, 0, err) < 0 ||
        append(t, &b, tail, strlen(tail), 1, err) < 0) {
        free(b.ids);
        return -1;
    }
    *ids = b.ids;
    *n_ids = b.n;
    return 0;
}

static int special_id(const s1_tokenizer *t, const char *name, int32_t *id, s1_err *err)
{
    *id = s1_tokenizer_token_id(t, name);
    if (*id < 0)
        return s1_errf(err, "tokenizer.json has no %s token: is this a Qwen2 model directory?",
                       name);
    return 0;
}

static int think_end_id(const s1_tokenizer *t, const char *think_end, int32_t *id, s1_err *err)
{
    _cleanup_free_ int32_t *ids = NULL;
    size_t n = 0;
    if (s1_tokenizer_encode(t, think_end, strlen(think_end), 1, &ids, &n, err) < 0) return -1;
    if (n != 1)
        return s1_errf(err,
                       "policy.think_end \"%s\" is %zu tokens: it must be exactly one "
                       "(e.g. <|im_start|>)",
                       think_end, n);
    *id = ids[0];
    return 0;
}

int s1_prompt_vocab_build(const s1_tokenizer *t, const s1_policy_cfg *cfg, int raw,
                          s1_prompt_vocab *pv, s1_err *err)
{
    *pv = (s1_prompt_vocab){0};
    s1_vocab *v = &pv->v;
    if (special_id(t, "<|im_end|>", &v->eos, err) < 0) return -1;
    v->eos_alt = raw ? s1_tokenizer_token_id(t, "<|endoftext|>") : -1;
    const char *think_end = cfg->think_end ? cfg->think_end : S1_DEFAULT_THINK_END;
    const char *wait = cfg->wait_string ? cfg->wait_string : S1_DEFAULT_WAIT_STRING;
    const char *header = cfg->answer_header ? cfg->answer_header : S1_DEFAULT_ANSWER_HEADER;
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
