#include "tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "cleanup.h"
#include "file.h"
#include "tok_bpe.h"
#include "tok_map.h"

/* Ids above this are refused: a real vocabulary has a few hundred thousand,
 * and a corrupt file must not make us allocate gigabytes. */
#define MAX_ID         (1 << 24)
#define MAX_FILE_BYTES ((size_t)1 << 30)

/* GPT-2's pattern, which a ByteLevel pre-tokenizer with use_regex applies. */
static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

typedef struct {
    const char *content; /* UTF-8, in the tokenizer's arena */
    size_t len;
    int32_t id;
    int normalized; /* matched after NFC rather than on the raw text */
} added_token;

struct s1_tokenizer {
    char *arena;       /* owned: the bytes of every token, back to back */
    uint32_t *tok_off; /* owned [n_vocab] */
    int32_t *tok_len;  /* owned [n_vocab]; -1 where no token has this id */
    int32_t n_vocab;
    s1_tok_strmap vocab; /* token bytes -> id; keys point into arena */
    s1_tok_pairmap merges;
    int32_t byte_id[256]; /* id of each single byte, -1 if absent */
    int16_t cp_byte[324]; /* byte-level code point -> byte, -1 if none */
    int32_t unk_id;
    int ignore_merges;
    int nfc;
    added_token *added; /* owned [n_added] */
    size_t n_added;
    uint8_t added_first[256]; /* 1 where some added token starts with this byte */
    pcre2_code *re;           /* owned; NULL: a segment is one word */
};

/* ---- byte-level alphabet ------------------------------------------------ */

/* GPT-2 maps each byte to a printable code point: printable Latin-1 bytes to
 * themselves, the others to 256, 257, ... in byte order. */
static int32_t byte_to_cp(int b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    int n = 0;
    for (int c = 0; c < b; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174)) n++;
    return 256 + n;
}

/* The inverse of byte_to_cp, for code points 0..323 (-1: not a byte). */
static void fill_cp_byte(int16_t cp_byte[324])
{
    for (int i = 0; i < 324; i++)
        cp_byte[i] = -1;
    for (int b = 0; b < 256; b++)
        cp_byte[byte_to_cp(b)] = (int16_t)b;
}

/* Length of the valid UTF-8 sequence at p, or minus the length of the maximal
 * invalid subpart there (what one U+FFFD replaces, as Unicode recommends). */
static int utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    int need;
    unsigned lo = 0x80, hi = 0xbf;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf)
        need = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else
        return -1;
    for (int k = 1; k < need; k++) {
        if ((size_t)k >= n || p[k] < lo || p[k] > hi) return -k;
        lo = 0x80, hi = 0xbf;
    }
    return need;
}

/* Byte-level token text to raw bytes, in place (the result is never longer).
 * Text with a character outside the alphabet is left as it is, as its own
 * bytes: no merge can reach such a token, but decoding still shows it. */
static void unmap_bytes(const int16_t cp_byte[324], char *s, size_t *len)
{
    for (int write = 0; write < 2; write++) { /* check everything, then convert */
        size_t out = 0;
        for (size_t i = 0; i < *len;) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t k =
                utf8proc_iterate((const uint8_t *)s + i, (utf8proc_ssize_t)(*len - i), &cp);
            int b = k > 0 && cp >= 0 && cp < 324 ? cp_byte[cp] : -1;
            if (b < 0) return;
            if (write) s[out++] = (char)b;
            i += (size_t)k;
        }
        if (write) *len = out;
    }
}

/* ---- loading --------------------------------------------------------- */

static int json_flag(const json_t *obj, const char *key, int dflt)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static const char *json_type_name(const json_t *obj)
{
    return json_string_value(json_object_get(obj, "type"));
}

static int check_id(json_int_t id, const char *path, const char *what, const char *name,
                    s1_err *err)
{
    if (id < 0 || id >= MAX_ID)
        return s1_errf(err, "%s: %s \"%.60s\" has id %lld, outside 0..%d", path, what, name,
                       (long long)id, MAX_ID - 1);
    return 0;
}

/* First pass over vocab and added tokens: the id range and the bytes needed. */
static int measure(const json_t *vocab, const json_t *added, const char *path, int32_t *max_id,
                   size_t *bytes, s1_err *err)
{
    const char *key;
    json_t *val;
    *max_id = -1;
    *bytes = 0;
    json_object_foreach((json_t *)vocab, key, val)
    {
        if (!json_is_integer(val))
            return s1_errf(err, "%s: vocab entry \"%.60s\" is not an integer id", path, key);
        if (check_id(json_integer_value(val), path, "vocab entry", key, err) < 0) return -1;
        if (json_integer_value(val) > *max_id) *max_id = (int32_t)json_integer_value(val);
        *bytes += strlen(key);
    }
    size_t i;
    json_array_foreach(added, i, val)
    {
        const char *content = json_string_value(json_object_get(val, "content"));
        json_t *id = json_object_get(val, "id");
        if (!content || !*content || !json_is_integer(id))
            return s1_errf(
                err, "%s: added_tokens[%zu] needs a non-empty \"content\" and an integer \"id\"",
                path, i);
        if (check_id(json_integer_value(id), path, "added token", content, err) < 0) return -1;
        if (json_integer_value(id) > *max_id) *max_id = (int32_t)json_integer_value(id);
        *bytes += strlen(content);
    }
    return 0;
}

/* Stores each vocab token as raw bytes in the arena and indexes it. */
static int load_vocab(s1_tokenizer *t, const json_t *vocab, size_t *used, const char *path,
                      s1_err *err)
{
    const char *key;
    json_t *val;
    if (s1_tok_strmap_init(&t->vocab, json_object_size(vocab)) < 0)
        return s1_errf(err, "%s: out of memory", path);
    json_object_foreach((json_t *)vocab, key, val)
    {
        int32_t id = (int32_t)json_integer_value(val);
        size_t len = strlen(key);
        char *dst = t->arena + *used;
        memcpy(dst, key, len);
        unmap_bytes(t->cp_byte, dst, &len);
        if (t->tok_len[id] < 0) {
            t->tok_off[id] = (uint32_t)*used;
            t->tok_len[id] = (int32_t)len;
        }
        if (s1_tok_strmap_put(&t->vocab, dst, len, id) < 0)
            return s1_errf(err, "%s: out of memory", path);
        *used += len;
    }
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        t->byte_id[b] = s1_tok_strmap_get(&t->vocab, &c, 1);
    }
    return 0;
}

/* Added tokens keep their text as is; they are never byte-level mapped. */
static int load_added(s1_tokenizer *t, const json_t *added, size_t *used, const char *path,
                      s1_err *err)
{
    size_t i;
    json_t *val;
    t->n_added = json_array_size(added);
    t->added = calloc(t->n_added ? t->n_added : 1, sizeof *t->added);
    if (!t->added) return s1_errf(err, "%s: out of memory", path);
    json_array_foreach(added, i, val)
    {
        const char *content = json_string_value(json_object_get(val, "content"));
        if (json_flag(val, "lstrip", 0) || json_flag(val, "rstrip", 0) ||
            json_flag(val, "single_word", 0))
            return s1_errf(
                err,
                "%s: added token \"%.60s\" uses lstrip, rstrip or single_word, which s1d "
                "does not support",
                path, content);
        added_token *a = &t->added[i];
        a->len = strlen(content);
        a->content = memcpy(t->arena + *used, content, a->len);
        a->id = (int32_t)json_integer_value(json_object_get(val, "id"));
        a->normalized = json_flag(val, "normalized", !json_flag(val, "special", 0));
        t->tok_off[a->id] = (uint32_t)*used;
        t->tok_len[a->id] = (int32_t)a->len;
        t->added_first[(unsigned char)content[0]] = 1;
        *used += a->len;
    }
    return 0;
}

static int load_tokens(s1_tokenizer *t, const json_t *vocab, const json_t *added, const char *path,
                       s1_err *err)
{
    int32_t max_id;
    size_t bytes, used = 0;
    if (measure(vocab, added, path, &max_id, &bytes, err) < 0) return -1;
    t->n_vocab = max_id + 1;
    t->arena = malloc(bytes + 1);
    t->tok_off = calloc((size_t)t->n_vocab + 1, sizeof *t->tok_off);
    t->tok_len = malloc(((size_t)t->n_vocab + 1) * sizeof *t->tok_len);
    if (!t->arena || !t->tok_off || !t->tok_len) return s1_errf(err, "%s: out of memory", path);
    for (int32_t i = 0; i < t->n_vocab; i++)
        t->tok_len[i] = -1;
    if (load_vocab(t, vocab, &used, path, err) < 0) return -1;
    return load_added(t, added, &used, path, err);
}

/* A growable buffer for building keys while loading. */
typedef struct {
    char *p; /* owned */
    size_t cap;
} scratch;

/* Id of the byte-level token text a (+ b when given), or -1. */
static int32_t lookup_text(const s1_tokenizer *t, scratch *s, const char *a, size_t la,
                           const char *b, size_t lb)
{
    if (la + lb + 1 > s->cap) {
        char *p = realloc(s->p, 2 * (la + lb + 1));
        if (!p) return -1;
        s->p = p;
        s->cap = 2 * (la + lb + 1);
    }
    memcpy(s->p, a, la);
    if (lb) memcpy(s->p + la, b, lb);
    size_t len = la + lb;
    unmap_bytes(t->cp_byte, s->p, &len);
    return s1_tok_strmap_get(&t->vocab, s->p, len);
}

/* A merge is "a b" (split at the one space) or, in newer files, ["a", "b"]. */
static int merge_parts(const json_t *m, const char **a, size_t *la, const char **b, size_t *lb)
{
    if (json_is_string(m)) {
        const char *s = json_string_value(m), *sp = strchr(s, ' ');
        if (!sp || sp == s || !sp[1] || strchr(sp + 1, ' ')) return -1;
        *a = s, *la = (size_t)(sp - s), *b = sp + 1, *lb = strlen(sp + 1);
        return 0;
    }
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
        json_is_string(json_array_get(m, 1))) {
        *a = json_string_value(json_array_get(m, 0)), *la = strlen(*a);
        *b = json_string_value(json_array_get(m, 1)), *lb = strlen(*b);
        return 0;
    }
    return -1;
}

/* The rank of a merge is its index in the list; the merged token must exist. */
static int load_merges(s1_tokenizer *t, const json_t *merges, const char *path, s1_err *err)
{
    scratch s = {0};
    size_t i;
    json_t *m;
    int rc = 0;
    if (s1_tok_pairmap_init(&t->merges, json_array_size(merges)) < 0)
        return s1_errf(err, "%s: out of memory", path);
    json_array_foreach(merges, i, m)
    {
        const char *a, *b;
        size_t la, lb;
        if (merge_parts(m, &a, &la, &b, &lb) < 0) {
            rc = s1_errf(err, "%s: merges[%zu] is neither \"left right\" nor [\"left\", \"right\"]",
                         path, i);
            break;
        }
        int32_t ia = lookup_text(t, &s, a, la, NULL, 0), ib = lookup_text(t, &s, b, lb, NULL, 0);
        int32_t iab = lookup_text(t, &s, a, la, b, lb);
        if (ia < 0 || ib < 0) {
            rc = s1_errf(err, "%s: merges[%zu] names the token \"%.*s\", which is not in the vocab",
                         path, i, (int)(ia < 0 ? la : lb), ia < 0 ? a : b);
            break;
        }
        if (iab < 0) {
            rc = s1_errf(err, "%s: merges[%zu] makes \"%.*s%.*s\", which is not in the vocab", path,
                         i, (int)la, a, (int)lb, b);
            break;
        }
        s1_tok_pairmap_put(&t->merges, ia, ib, (int32_t)i, iab);
    }
    free(s.p);
    return rc;
}

/* Oniguruma, which Hugging Face uses, defines \s as U+0009..U+000D, U+0085
 * and the separators (Z); PCRE2 also counts U+180E. Spelling the set out makes
 * both engines agree. A \S inside a class stays as PCRE2 has it. */
#define ONIG_SPACE "\\t-\\r\\x{85}\\p{Z}"

static char *translate_regex(const char *src)
{
    size_t n = strlen(src);
    char *out = malloc(n * 24 + 1), *o = out;
    int in_class = 0;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (c == '\\' && i + 1 < n) {
            char e = src[++i];
            if (e == 's')
                o = stpcpy(o, in_class ? ONIG_SPACE : "[" ONIG_SPACE "]");
            else if (e == 'S' && !in_class)
                o = stpcpy(o, "[^" ONIG_SPACE "]");
            else
                *o++ = c, *o++ = e;
            continue;
        }
        *o++ = c;
        if (c == '[' && !in_class) {
            in_class = 1;
            if (src[i + 1] == '^') *o++ = src[++i];
            if (src[i + 1] == ']') *o++ = src[++i]; /* a leading ] is literal */
        } else if (c == '[' && src[i + 1] == ':') {
            const char *end = strstr(src + i, ":]");
            size_t k = end ? (size_t)(end - src) + 2 : n;
            memcpy(o, src + i + 1, k - i - 1);
            o += k - i - 1;
            i = k - 1;
        } else if (c == ']' && in_class)
            in_class = 0;
    }
    *o = '\0';
    return out;
}

static int compile_regex(s1_tokenizer *t, const char *pattern, const char *path, s1_err *err)
{
    _cleanup_free_ char *pcre = translate_regex(pattern);
    if (!pcre) return s1_errf(err, "%s: out of memory", path);
    int code;
    PCRE2_SIZE off;
    t->re = pcre2_compile((PCRE2_SPTR)pcre, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code,
                          &off, NULL);
    if (!t->re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof msg);
        return s1_errf(err, "%s: the pre_tokenizer regex \"%.80s\" does not compile: %s", path,
                       pattern, (const char *)msg);
    }
    pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE); /* without JIT the interpreter runs it */
    return 0;
}

/* One step of the pre-tokenizer: a Split by regex, or the ByteLevel mapping. */
static int pretok_step(const json_t *step, const char **pattern, int *byte_level, const char *path,
                       s1_err *err)
{
    const char *type = json_type_name(step);
    if (type && !strcmp(type, "Split")) {
        const char *re =
            json_string_value(json_object_get(json_object_get(step, "pattern"), "Regex"));
        const char *behavior = json_string_value(json_object_get(step, "behavior"));
        if (!re)
            return s1_errf(err, "%s: the Split pre_tokenizer needs a \"pattern\": {\"Regex\": ...}",
                           path);
        if (!behavior || strcmp(behavior, "Isolated") || json_flag(step, "invert", 0))
            return s1_errf(
                err, "%s: Split behavior \"%s\"%s is not supported; s1d supports Isolated", path,
                behavior ? behavior : "(none)", json_flag(step, "invert", 0) ? " with invert" : "");
        if (*pattern || *byte_level)
            return s1_errf(
                err, "%s: a Split after another Split or after ByteLevel is not supported", path);
        *pattern = re;
        return 0;
    }
    if (type && !strcmp(type, "ByteLevel")) {
        if (json_flag(step, "add_prefix_space", 0))
            return s1_errf(err, "%s: ByteLevel with add_prefix_space is not supported", path);
        if (json_flag(step, "use_regex", 1)) {
            if (*pattern)
                return s1_errf(
                    err, "%s: a Split followed by ByteLevel with use_regex is not supported", path);
            *pattern = gpt2_pattern;
        }
        *byte_level = 1;
        return 0;
    }
    return s1_errf(
        err, "%s: pre_tokenizer type \"%s\" is not supported; s1d supports Split and ByteLevel",
        path, type ? type : "(none)");
}

static int load_pretokenizer(s1_tokenizer *t, const json_t *pt, const char *path, s1_err *err)
{
    const char *type = json_type_name(pt), *pattern = NULL;
    int byte_level = 0;
    if (!json_is_object(pt))
        return s1_errf(err, "%s: no pre_tokenizer; byte-level BPE needs a ByteLevel pre_tokenizer",
                       path);
    if (type && !strcmp(type, "Sequence")) {
        size_t i;
        json_t *step;
        json_array_foreach(json_object_get(pt, "pretokenizers"), i,
                           step) if (pretok_step(step, &pattern, &byte_level, path, err) <
                                     0) return -1;
    } else if (pretok_step(pt, &pattern, &byte_level, path, err) < 0)
        return -1;
    if (!byte_level)
        return s1_errf(err, "%s: the pre_tokenizer has no ByteLevel step; s1d needs one", path);
    return pattern ? compile_regex(t, pattern, path, err) : 0;
}

static int load_normalizer(s1_tokenizer *t, const json_t *norm, const char *path, s1_err *err)
{
    const char *type = json_type_name(norm);
    if (!norm || json_is_null(norm)) return 0;
    if (type && !strcmp(type, "NFC")) {
        t->nfc = 1;
        return 0;
    }
    if (type && !strcmp(type, "Sequence")) {
        size_t i;
        json_t *step;
        json_array_foreach(json_object_get(norm, "normalizers"), i,
                           step) if (load_normalizer(t, step, path, err) < 0) return -1;
        return 0;
    }
    return s1_errf(err, "%s: normalizer type \"%s\" is not supported; s1d supports NFC", path,
                   type ? type : "(none)");
}

static int check_decoder(const json_t *dec, const char *path, s1_err *err)
{
    const char *type = json_type_name(dec);
    if (!dec || json_is_null(dec) || (type && !strcmp(type, "ByteLevel"))) return 0;
    return s1_errf(err, "%s: decoder type \"%s\" is not supported; s1d supports ByteLevel", path,
                   type ? type : "(none)");
}

/* The BPE options that would change the output and that s1d does not do. */
static int check_bpe_options(const json_t *model, const char *path, s1_err *err)
{
    const char *prefix = json_string_value(json_object_get(model, "continuing_subword_prefix"));
    const char *suffix = json_string_value(json_object_get(model, "end_of_word_suffix"));
    if ((prefix && *prefix) || (suffix && *suffix))
        return s1_errf(err, "%s: continuing_subword_prefix / end_of_word_suffix are not supported",
                       path);
    if (json_flag(model, "byte_fallback", 0))
        return s1_errf(err, "%s: byte_fallback is not supported (byte-level BPE does not need it)",
                       path);
    if (json_number_value(json_object_get(model, "dropout")) > 0)
        return s1_errf(err, "%s: BPE dropout is not supported; set \"dropout\": null", path);
    return 0;
}

static int load_model(s1_tokenizer *t, const json_t *root, const char *path, s1_err *err)
{
    const json_t *model = json_object_get(root, "model");
    const json_t *added = json_object_get(root, "added_tokens");
    if (!json_is_object(model))
        return s1_errf(err, "%s: no \"model\" object; is this a Hugging Face tokenizer.json?",
                       path);
    const char *type = json_type_name(model);
    if (!type || strcmp(type, "BPE"))
        return s1_errf(err, "%s: model type \"%s\" is not supported; s1d supports BPE", path,
                       type ? type : "(none)");
    const json_t *vocab = json_object_get(model, "vocab"),
                 *merges = json_object_get(model, "merges");
    if (!json_is_object(vocab))
        return s1_errf(err, "%s: the BPE model has no \"vocab\" object", path);
    if (!json_is_array(merges))
        return s1_errf(err, "%s: the BPE model has no \"merges\" array", path);
    if (added && !json_is_null(added) && !json_is_array(added))
        return s1_errf(err, "%s: \"added_tokens\" is not an array", path);
    if (check_bpe_options(model, path, err) < 0) return -1;
    if (load_tokens(t, vocab, added, path, err) < 0) return -1;
    if (load_merges(t, merges, path, err) < 0) return -1;
    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    t->unk_id = unk ? s1_tok_strmap_get(&t->vocab, unk, strlen(unk)) : -1;
    t->ignore_merges = json_flag(model, "ignore_merges", 0);
    return 0;
}

s1_tokenizer *s1_tokenizer_load(const char *path, s1_err *err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len;
    if (s1_read_file(path, MAX_FILE_BYTES, &buf, &len, err) < 0) return NULL;
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, 0, &jerr);
    if (!root) {
        s1_errf(err, "%s: invalid JSON at line %d, column %d: %s", path, jerr.line, jerr.column,
                jerr.text);
        return NULL;
    }
    s1_tokenizer *t = calloc(1, sizeof *t);
    int rc = t ? 0 : s1_errf(err, "%s: out of memory", path);
    if (!rc) fill_cp_byte(t->cp_byte);
    if (!rc && !json_is_object(root))
        rc = s1_errf(err, "%s: the top level is not a JSON object", path);
    if (!rc) rc = load_model(t, root, path, err);
    if (!rc) rc = load_normalizer(t, json_object_get(root, "normalizer"), path, err);
    if (!rc) rc = load_pretokenizer(t, json_object_get(root, "pre_tokenizer"), path, err);
    if (!rc) rc = check_decoder(json_object_get(root, "decoder"), path, err);
    json_decref(root);
    if (rc < 0) {
        s1_tokenizer_free(t);
        return NULL;
    }
    return t;
}

/* The path is built here so that callers outside the engine need to know
 * only the model directory, as they do for s1_engine_open. */
s1_tokenizer *s1_tokenizer_open(const char *model_dir, s1_err *err)
{
    _cleanup_free_ char *path = NULL;
    if (asprintf(&path, "%s/tokenizer.json", model_dir) < 0) {
        s1_errf(err, "%s: out of memory", model_dir);
        return NULL;
    }
    return s1_tokenizer_load(path, err);
}

void s1_tokenizer_free(s1_tokenizer *t)
{
    if (!t) return;
    s1_tok_strmap_free(&t->vocab);
    s1_tok_pairmap_free(&t->merges);
    pcre2_code_free(t->re);
    free(t->added);
    free(t->arena);
    free(t->tok_off);
    free(t->tok_len);
    free(t);
}

/* ---- encoding -------------------------------------------------------- */

/* The state of one encode call. The word cache is per call so that encode
 * stays reentrant on a shared, read-only tokenizer. */
typedef struct {
    const s1_tokenizer *t;
    int32_t *ids; /* owned until handed to the caller */
    size_t n, cap;
    s1_tok_strmap cache; /* word -> offset in pool; keys point into kept texts */
    int32_t *pool;       /* owned: per cached word, its count then its ids */
    size_t pool_n, pool_cap;
    char **kept; /* owned: normalized texts the cache keys point into */
    size_t n_kept, kept_cap;
    int32_t *word; /* owned: the ids of the word being merged */
    size_t word_cap;
    s1_tok_bpe_scratch bpe;
    pcre2_match_data *md;    /* owned */
    pcre2_match_context *mc; /* owned */
    s1_err *err;
} encoder;

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int emit(encoder *e, const int32_t *ids, size_t n)
{
    if (n == 0) return 0;
    if (grow((void **)&e->ids, &e->cap, e->n + n, sizeof *e->ids) < 0)
        return s1_errf(e->err, "tokenizer: out of memory");
    memcpy(e->ids + e->n, ids, n * sizeof *ids);
    e->n += n;
    return 0;
}

static int cache_put(encoder *e, const char *w, size_t len, const int32_t *ids, size_t n)
{
    if (grow((void **)&e->pool, &e->pool_cap, e->pool_n + n + 1, sizeof *e->pool) < 0 ||
        s1_tok_strmap_put(&e->cache, w, len, (int32_t)e->pool_n) < 0)
        return s1_errf(e->err, "tokenizer: out of memory");
    e->pool[e->pool_n] = (int32_t)n;
    memcpy(e->pool + e->pool_n + 1, ids, n * sizeof *ids);
    e->pool_n += n + 1;
    return 0;
}

/* One pre-tokenized word: its bytes become single-byte tokens, then merge. */
static int encode_word(encoder *e, const char *w, size_t len)
{
    const s1_tokenizer *t = e->t;
    int32_t at = s1_tok_strmap_get(&e->cache, w, len);
    if (at >= 0) return emit(e, e->pool + at + 1, (size_t)e->pool[at]);
    int32_t whole = t->ignore_merges ? s1_tok_strmap_get(&t->vocab, w, len) : -1;
    if (whole >= 0) return emit(e, &whole, 1);
    if (grow((void **)&e->word, &e->word_cap, len, sizeof *e->word) < 0)
        return s1_errf(e->err, "tokenizer: out of memory");
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t id = t->byte_id[(unsigned char)w[i]];
        if (id < 0) id = t->unk_id; /* a byte missing from the vocab: unk, else dropped */
        if (id >= 0) e->word[n++] = id;
    }
    long k = s1_tok_bpe_merge(&t->merges, e->word, n, &e->bpe);
    if (k < 0) return s1_errf(e->err, "tokenizer: out of memory");
    if (cache_put(e, w, len, e->word, (size_t)k) < 0) return -1;
    return emit(e, e->word, (size_t)k);
}

/* The pre-tokenizer: regex matches and the gaps between them are words. */
static int split_words(encoder *e, const char *s, size_t len)
{
    size_t done = 0, from = 0;
    if (!e->t->re) return len ? encode_word(e, s, len) : 0;
    while (from < len) {
        int rc = pcre2_match(e->t->re, (PCRE2_SPTR)s, len, from, PCRE2_NO_UTF_CHECK, e->md, e->mc);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return s1_errf(e->err, "tokenizer: the pre_tokenizer regex failed at byte %zu: %s",
                           from, (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
        if (ov[1] == ov[0]) { /* an empty match splits nothing: look again one character on */
            if (ov[0] >= len) break;
            from = ov[0] + (size_t)utf8_seq((const unsigned char *)s + ov[0], len - ov[0]);
            continue;
        }
        if (ov[0] > done && encode_word(e, s + done, ov[0] - done) < 0) return -1;
        if (encode_word(e, s + ov[0], ov[1] - ov[0]) < 0) return -1;
        done = from = ov[1];
    }
    return done < len ? encode_word(e, s + done, len - done) : 0;
}

/* Leftmost-longest added token in s[from..len) among those whose normalized
 * flag is as asked; returns its index and start, or -1. */
static long find_added(const s1_tokenizer *t, const char *s, size_t len, size_t from,
                       int normalized, size_t *start)
{
    for (size_t i = from; i < len; i++) {
        if (!t->added_first[(unsigned char)s[i]]) continue;
        long best = -1;
        for (size_t k = 0; k < t->n_added; k++) {
            const added_token *a = &t->added[k];
            if (a->normalized != normalized || a->len > len - i ||
                memcmp(s + i, a->content, a->len))
                continue;
            if (best < 0 || a->len > t->added[best].len) best = (long)k;
        }
        if (best >= 0) {
            *start = i;
            return best;
        }
    }
    return -1;
}

/* Text between added tokens goes to next(); with special off it is all text. */
static int split_added(encoder *e, const char *s, size_t len, int special, int normalized,
                       int (*next)(encoder *, const char *, size_t, int))
{
    size_t from = 0, start;
    long k;
    while (special && (k = find_added(e->t, s, len, from, normalized, &start)) >= 0) {
        if (start > from && next(e, s + from, start - from, special) < 0) return -1;
        if (emit(e, &e->t->added[k].id, 1) < 0) return -1;
        from = start + e->t->added[k].len;
    }
    return from < len ? next(e, s + from, len - from, special) : 0;
}

static int words_of(encoder *e, const char *s, size_t len, int special)
{
    (void)special;
    return split_words(e, s, len);
}

/* NFC, then the added tokens that are matched on normalized text, then words. */
static int normalize_segment(encoder *e, const char *s, size_t len, int special)
{
    int ascii = 1;
    for (size_t i = 0; i < len && ascii; i++)
        ascii = !((unsigned char)s[i] & 0x80);
    if (!e->t->nfc || ascii) return split_added(e, s, len, special, 1, words_of);
    if (grow((void **)&e->kept, &e->kept_cap, e->n_kept + 1, sizeof *e->kept) < 0)
        return s1_errf(e->err, "tokenizer: out of memory");
    uint8_t *nfc = NULL;
    utf8proc_ssize_t n = utf8proc_map((const uint8_t *)s, (utf8proc_ssize_t)len, &nfc,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (n < 0)
        return s1_errf(e->err, "tokenizer: NFC normalization failed: %s", utf8proc_errmsg(n));
    e->kept[e->n_kept++] = (char *)nfc;
    return split_added(e, (const char *)nfc, (size_t)n, special, 1, words_of);
}

static void encoder_free(encoder *e)
{
    free(e->ids);
    s1_tok_strmap_free(&e->cache);
    free(e->pool);
    for (size_t i = 0; i < e->n_kept; i++)
        free(e->kept[i]);
    free(e->kept);
    free(e->word);
    s1_tok_bpe_scratch_free(&e->bpe);
    pcre2_match_data_free(e->md);
    pcre2_match_context_free(e->mc);
}

/* Bounds the regex's backtracking, so a pathological pattern from a file
 * fails an encode instead of hanging it. */
static int encoder_init(encoder *e, const s1_tokenizer *t, s1_err *err)
{
    memset(e, 0, sizeof *e);
    e->t = t;
    e->err = err;
    if (s1_tok_strmap_init(&e->cache, 1024) < 0) return s1_errf(err, "tokenizer: out of memory");
    if (t->re) {
        e->md = pcre2_match_data_create_from_pattern(t->re, NULL);
        e->mc = pcre2_match_context_create(NULL);
        if (!e->md || !e->mc) return s1_errf(err, "tokenizer: out of memory");
        pcre2_set_match_limit(e->mc, 10000000);
    }
    return 0;
}

static int check_utf8(const char *text, size_t len, s1_err *err)
{
    for (size_t i = 0; i < len;) {
        int k = utf8_seq((const unsigned char *)text + i, len - i);
        if (k < 0) return s1_errf(err, "tokenizer: the text is not valid UTF-8 (byte %zu)", i);
        i += (size_t)k;
    }
    return 0;
}

int s1_tokenizer_encode(const s1_tokenizer *t, const char *text, size_t len, int special,
                        int32_t **ids, size_t *n_ids, s1_err *err)
{
    encoder e;
    if (check_utf8(text, len, err) < 0) return -1;
    int rc = encoder_init(&e, t, err);
    if (!rc) rc = split_added(&e, text, len, special, 0, normalize_segment);
    if (!rc) {
        *ids = e.ids ? e.ids : malloc(sizeof **ids);
        *n_ids = e.n;
        e.ids = NULL;
        if (!*ids) rc = s1_errf(err, "tokenizer: out of memory");
    }
    encoder_free(&e);
    return rc;
}

/* ---- decoding -------------------------------------------------------- */

/* Invalid UTF-8 (a sequence cut between tokens) becomes U+FFFD, one per
 * maximal invalid subpart, as Hugging Face's lossy decoding does. */
static size_t repair_utf8(const char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        int k = utf8_seq((const unsigned char *)in + i, n - i);
        if (k > 0) {
            memcpy(out + o, in + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i += (size_t)-k;
        }
    }
    out[o] = '\0';
    return o;
}

int s1_tokenizer_decode(const s1_tokenizer *t, const int32_t *ids, size_t n_ids, char **out,
                        size_t *out_len, s1_err *err)
{
    size_t total = 0;
    for (size_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab || t->tok_len[ids[i]] < 0)
            return s1_errf(err, "tokenizer: token id %d (at %zu) is not in the vocabulary (0..%d)",
                           ids[i], i, t->n_vocab - 1);
        total += (size_t)t->tok_len[ids[i]];
    }
    _cleanup_free_ char *raw = malloc(total + 1);
    char *text = malloc(3 * total + 1);
    if (!raw || !text) {
        free(text);
        return s1_errf(err, "tokenizer: out of memory decoding %zu tokens", n_ids);
    }
    size_t at = 0;
    for (size_t i = 0; i < n_ids; i++) {
        memcpy(raw + at, t->arena + t->tok_off[ids[i]], (size_t)t->tok_len[ids[i]]);
        at += (size_t)t->tok_len[ids[i]];
    }
    *out_len = repair_utf8(raw, total, text);
    *out = text;
    return 0;
}

int32_t s1_tokenizer_token_id(const s1_tokenizer *t, const char *s)
{
    size_t len = strlen(s);
    for (size_t k = 0; k < t->n_added; k++)
        if (t->added[k].len == len && !memcmp(t->added[k].content, s, len)) return t->added[k].id;
    return s1_tok_strmap_get(&t->vocab, s, len);
}

int32_t s1_tokenizer_n_vocab(const s1_tokenizer *t)
{
    return t->n_vocab;
}
