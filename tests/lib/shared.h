/* tests/lib/shared.h — the data beside the project ($S1_SHARED: the real
 * Qwen2.5 tokenizer, benchmark sets). Tests that need it leave their cases
 * out, with a reason, where it is absent. */
#ifndef S1_TEST_SHARED_H
#define S1_TEST_SHARED_H

/* $S1_SHARED/rel when that file is readable, else NULL after printing a TAP
 * comment naming the file and what is skipped. The path is static storage. */
const char *s1test_shared(const char *rel, const char *skipped);

#endif
