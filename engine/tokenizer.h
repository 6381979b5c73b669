/* engine/tokenizer.h — the byte-level BPE tokenizer of a Hugging Face
 * tokenizer.json (Qwen2/Qwen2.5): NFC, the Split pre-tokenizer regex, merges by
 * rank, added tokens matched first, ByteLevel decoding. */
#ifndef S1_TOKENIZER_H
#define S1_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct s1_tokenizer s1_tokenizer;

s1_tokenizer *s1_tokenizer_load(const char *tokenizer_json_path, s1_err *err);
void s1_tokenizer_free(s1_tokenizer *t);

/* Encodes len bytes of UTF-8 text into *ids (malloc'ed, owned by the caller).
 * With special = 1 the added tokens written in the text ("<|im_end|>") are
 * matched as such; with 0 all text is ordinary, so a problem can never inject
 * template markup. */
int s1_tokenizer_encode(const s1_tokenizer *t, const char *text, size_t len, int special,
                        int32_t **ids, size_t *n_ids, s1_err *err);

/* Decodes ids to text (*out malloc'ed, NUL-terminated, owned by the caller). */
int s1_tokenizer_decode(const s1_tokenizer *t, const int32_t *ids, size_t n_ids, char **out,
                        size_t *out_len, s1_err *err);

/* Id of the token whose content is exactly s (a vocabulary entry or an added
 * token, e.g. "<|im_start|>"), or -1. */
int32_t s1_tokenizer_token_id(const s1_tokenizer *t, const char *s);

/* One past the largest id the tokenizer can produce. */
int32_t s1_tokenizer_n_vocab(const s1_tokenizer *t);

#endif
