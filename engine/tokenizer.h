/* engine/tokenizer.h — the byte-level BPE tokenizer of a Hugging Face
 * tokenizer.json (Qwen2/Qwen2.5): NFC, the Split pre-tokenizer regex, merges by
 * rank, added tokens matched first, ByteLevel decoding. Encoding, decoding and
 * opening a model directory's tokenizer are public (engine.h); this adds what
 * only the engine and its tests use. */
#ifndef S1_TOKENIZER_H
#define S1_TOKENIZER_H

#include <stdint.h>

#include "engine.h"
#include "err.h"

/* Loads a tokenizer.json given by its own path. */
s1_tokenizer *s1_tokenizer_load(const char *tokenizer_json_path, s1_err *err);

/* Id of the token whose content is exactly s (a vocabulary entry or an added
 * token, e.g. "<|im_start|>"), or -1. */
int32_t s1_tokenizer_token_id(const s1_tokenizer *t, const char *s);

#endif
