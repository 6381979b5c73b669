/* engine/prompt.h — the prompt templates (the chat turns with the thinking
 * opened: the s1 format, or think-tags as QwQ and R1-distill write it) and a
 * request's policy strings as tokens. The chat markup is Qwen's, or
 * DeepSeek's where the tokenizer has no <|im_end|> (DeepSeek-R1-Distill-Qwen). The template's
 * markup is the only source of special tokens: the system text and the problem are encoded as plain
 * text, so no problem can break out of the template. */
#ifndef S1_PROMPT_H
#define S1_PROMPT_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "err.h"
#include "policy.h"
#include "tokenizer.h"

/* Defaults of s1_policy_cfg's strings (engine_params.h) in the s1 template. */
#define S1_DEFAULT_SYSTEM        "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
#define S1_DEFAULT_THINK_END     "<|im_start|>"
#define S1_DEFAULT_ANSWER_HEADER "answer\n"
#define S1_DEFAULT_ANSWER_PREFIX "Final Answer:"
#define S1_DEFAULT_WAIT_STRING   "Wait"

/* cfg's template (S1_TEMPLATE_DEFAULT counts as s1) around the problem:
 * s1:         <|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{problem}<|im_end|>\n
 *             <|im_start|>assistant\n<|im_start|>think\n
 * think-tags: [<|im_start|>system\n{system}<|im_end|>\n]<|im_start|>user\n{problem}<|im_end|>\n
 *             <|im_start|>assistant\n<think>\n   (the system turn only when cfg->system is set)
 *   DeepSeek: <｜begin▁of▁sentence｜>[{system}]<｜User｜>{problem}<｜Assistant｜><think>\n
 * → *ids (malloc'ed, the caller's). */
int s1_prompt_render(const s1_tokenizer *t, const s1_policy_cfg *cfg, const char *problem,
                     size_t problem_len, int32_t **ids, size_t *n_ids, s1_err *err);

/* A policy's strings as tokens; v's arrays point into the owned ones. */
typedef struct {
    s1_vocab v;
    int32_t *wait, *answer_start; /* owned */
} s1_prompt_vocab;

/* Tokenizes cfg's strings (its template's defaults for NULL ones): think_end
 * must be exactly one token, and so must the template's markup. eos is
 * <|im_end|> (DeepSeek: <｜end▁of▁sentence｜>); raw requests also stop on
 * <|endoftext|>. Errors name the field,
 * or the template and the token the tokenizer lacks. */
int s1_prompt_vocab_build(const s1_tokenizer *t, const s1_policy_cfg *cfg, int raw,
                          s1_prompt_vocab *pv, s1_err *err);
void s1_prompt_vocab_free(s1_prompt_vocab *pv);

/* The template for requests that name none: want, when it is not
 * S1_TEMPLATE_DEFAULT and the tokenizer can serve it; else think-tags when
 * the tokenizer has <think> and </think> as single tokens, s1 otherwise.
 * Fails when want cannot work with this tokenizer, saying why. */
int s1_prompt_template_choose(const s1_tokenizer *t, s1_template want, s1_template *out,
                              s1_err *err);

#endif
