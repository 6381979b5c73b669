#include "cuda_plan.h"

int s1_plan_bucket_size(int b)
{
    return 1 << b;
}

int s1_plan_bucket(int n, int max_tokens)
{
    for (int b = 0; b < S1_PLAN_N_BUCKETS && s1_plan_bucket_size(b) <= max_tokens; b++)
        if (n <= s1_plan_bucket_size(b)) return b;
    return -1;
}

/* Doubling from 0 never ends, so the growth starts from 1 at least. */
int s1_plan_grow(int cap, int need)
{
    int64_t c = cap > 0 ? cap : 1;
    while (c < need)
        c *= 2;
    return c > INT32_MAX ? -1 : (int)c;
}

int s1_plan_attn_items(int n, int n_sms, int nkv)
{
    const int extra = (4 * n_sms + nkv - 1) / (nkv > 0 ? nkv : 1);
    return n + (extra > 0 ? extra : 1);
}

/* The items that n tokens need with spans of `span` positions. */
static int64_t items_for(const int32_t *ctx, int n, int64_t span)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        total += (ctx[i] + span - 1) / span;
    return total;
}

int s1_plan_attention(const int32_t *ctx, int n, int max_items, int32_t *span, int32_t *first,
                      int32_t *item_tok)
{
    if (max_items < n) return -1;
    int64_t s = S1_PLAN_MIN_SPAN;
    while (items_for(ctx, n, s) > max_items)
        s *= 2; /* ends: once s >= every ctx, each token has one item */
    *span = (int32_t)s;
    int w = 0;
    for (int i = 0; i < n; i++) {
        first[i] = w;
        for (int64_t k = (ctx[i] + s - 1) / s; k > 0; k--)
            item_tok[w++] = i;
    }
    first[n] = w;
    return w;
}
