#include "answer.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"

/* Answers are short, so normalization is a series of small rewriting passes,
 * each reading one string and writing the next. */
typedef struct {
    char *p; /* owned */
    size_t n, cap;
} sbuf;

static int sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

/* Makes sure the result is a string, even when nothing was put. */
static int sb_finish(sbuf *b)
{
    return b->p ? 0 : sb_put(b, "", 0);
}

/* Index just past the '}' that closes the '{' at s[open], or 0 when it is
 * never closed. \{ and \} are literal braces, not grouping. */
static size_t close_brace(const char *s, size_t open)
{
    int depth = 0;
    for (size_t i = open; s[i]; i++) {
        if (s[i] == '\\' && (s[i + 1] == '{' || s[i + 1] == '}'))
            i++;
        else if (s[i] == '{')
            depth++;
        else if (s[i] == '}' && --depth == 0)
            return i + 1;
    }
    return 0;
}

/* ---- extraction ------------------------------------------------------ */

static char *dup_trimmed(const char *s, size_t n)
{
    while (n && isspace((unsigned char)*s))
        s++, n--;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, s, n);
        out[n] = '\0';
    }
    return out;
}

/* The argument of a box command whose name ends just before arg: a braced
 * group, or (\boxed 5) the word after spaces. */
static int box_argument(const char *arg, const char **start, size_t *len)
{
    const char *p = arg + strspn(arg, " ");
    if (*p == '{') {
        size_t close = close_brace(p, 0);
        *start = p + 1, *len = close ? close - 2 : 0;
        return close != 0;
    }
    *start = p, *len = strcspn(p, "$ \n");
    return p > arg && *len > 0;
}

/* The last box whose argument is well formed; a box cut off at the end of the
 * text falls back to the one before it. */
static int find_boxed(const char *text, const char **start, size_t *len)
{
    static const char *const cmds[] = {"\\boxed", "\\fbox", "\\framebox"};
    for (size_t end = strlen(text); end > 0; end--)
        for (int c = 0; c < 3; c++) {
            size_t k = strlen(cmds[c]);
            if (end >= k && !strncmp(text + end - k, cmds[c], k) &&
                box_argument(text + end, start, len))
                return 1;
        }
    return 0;
}

/* The text after the last "Final Answer:", up to the end of its first line,
 * without a leading "The (final) answer is". */
static int find_final_answer(const char *text, const char **start, size_t *len)
{
    static const char *const preambles[] = {"the final answer is", "the answer is"};
    const char *hit = NULL;
    for (const char *p = strstr(text, "Final Answer:"); p; p = strstr(p + 1, "Final Answer:"))
        hit = p;
    if (!hit) return 0;
    hit += strlen("Final Answer:");
    while (isspace((unsigned char)*hit))
        hit++;
    for (int i = 0; i < 2; i++)
        if (!strncasecmp(hit, preambles[i], strlen(preambles[i]))) hit += strlen(preambles[i]);
    *start = hit, *len = strcspn(hit, "\n");
    return *len > 0;
}

/* The last number: digits with an optional sign, decimal point and thousands
 * commas ("-1,234.5"). */
static int find_last_number(const char *text, const char **start, size_t *len)
{
    const char *found = NULL;
    size_t found_len = 0;
    for (const char *p = text; *p;) {
        if (!isdigit((unsigned char)*p)) {
            p++;
            continue;
        }
        const char *s = p;
        while (isdigit((unsigned char)*p) ||
               ((*p == ',' || *p == '.') && isdigit((unsigned char)p[1])))
            p++;
        if (s > text && s[-1] == '-') s--;
        found = s, found_len = (size_t)(p - s);
    }
    *start = found, *len = found_len;
    return found != NULL;
}

int s1_answer_extract(const char *text, char **answer, s1_err *err)
{
    const char *start;
    size_t len;
    *answer = NULL;
    if (!find_boxed(text, &start, &len) && !find_final_answer(text, &start, &len) &&
        !find_last_number(text, &start, &len))
        return 0;
    *answer = dup_trimmed(start, len);
    return *answer ? 1 : s1_errf(err, "answer: out of memory extracting the final answer");
}

/* ---- normalization --------------------------------------------------- */

static int is_letter(char c)
{
    return isalpha((unsigned char)c);
}

/* Text wrappers whose content is the answer: \text{cm} -> cm. */
static const char *const wrappers[] = {"\\text{", "\\textbf{", "\\textrm{",
                                       "\\mbox{", "\\mathrm{", "\\mathbf{"};

/* Notation that never changes the value. A command is matched only when no
 * letter follows, so \left never eats \leftarrow. */
static const char *const dropped[] = {
    "\\left",    "\\right", "\\displaystyle", "\\!", "\\,", "\\;", "\\:", "\\ ", "^\\circ",
    "^{\\circ}", "\\circ",  "\xc2\xb0",       "\\%", "%",   "\\$", "$",   "~"};

static const char *const renamed[][2] = {
    {"\\dfrac", "\\frac"}, {"\\tfrac", "\\frac"}, {"{,}", ","}};

static int starts_cmd(const char *s, const char *cmd)
{
    size_t n = strlen(cmd);
    return !strncmp(s, cmd, n) && !(cmd[0] == '\\' && is_letter(cmd[n - 1]) && is_letter(s[n]));
}

/* One pass: unwraps wrappers, drops notation, renames, removes whitespace. */
static int rewrite(const char *s, sbuf *out)
{
    for (size_t i = 0; s[i];) {
        size_t skip = 0;
        for (size_t w = 0; w < sizeof wrappers / sizeof *wrappers && !skip; w++) {
            size_t n = strlen(wrappers[w]), close;
            if (strncmp(s + i, wrappers[w], n) || !(close = close_brace(s, i + n - 1))) continue;
            _cleanup_free_ char *inner = dup_trimmed(s + i + n, close - i - n - 1);
            if (!inner || rewrite(inner, out) < 0) return -1;
            skip = close - i;
        }
        for (size_t d = 0; d < sizeof dropped / sizeof *dropped && !skip; d++)
            if (starts_cmd(s + i, dropped[d])) skip = strlen(dropped[d]);
        for (size_t r = 0; r < sizeof renamed / sizeof *renamed && !skip; r++)
            if (starts_cmd(s + i, renamed[r][0])) {
                if (sb_put(out, renamed[r][1], strlen(renamed[r][1])) < 0) return -1;
                skip = strlen(renamed[r][0]);
            }
        if (!skip && isspace((unsigned char)s[i])) skip = 1;
        if (!skip && sb_put(out, s + i, 1) < 0) return -1;
        i += skip ? skip : 1;
    }
    return sb_finish(out);
}

/* Copies the argument at s[*i] of \frac or \sqrt: a braced group as it is,
 * else one character or one command (\frac\pi2), put in braces. */
static int put_arg(const char *s, size_t *i, sbuf *out)
{
    size_t at = *i, n = 1;
    if (s[at] == '{') {
        size_t end = close_brace(s, at);
        *i = end ? end : strlen(s);
        return sb_put(out, s + at, *i - at);
    }
    if (s[at] == '\\')
        while (is_letter(s[at + n]))
            n++;
    *i = at + n;
    return sb_put(out, "{", 1) || sb_put(out, s + at, n) || sb_put(out, "}", 1) ? -1 : 0;
}

/* \frac12 -> \frac{1}{2}, \sqrt2 -> \sqrt{2}: a bare argument gets braces. */
static int brace_args(const char *s, sbuf *out)
{
    for (size_t i = 0; s[i];) {
        int args = starts_cmd(s + i, "\\frac") ? 2 : starts_cmd(s + i, "\\sqrt") ? 1 : 0;
        if (sb_put(out, s + i, args ? 5 : 1) < 0) return -1;
        i += args ? 5 : 1;
        for (int a = 0; a < args && s[i]; a++)
            if (put_arg(s, &i, out) < 0) return -1;
    }
    return sb_finish(out);
}

/* Digits only, with an optional leading '-'. */
static int is_integer(const char *s)
{
    if (*s == '-') s++;
    if (!*s) return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

/* "1,234,567" (groups of three after the first) loses its commas. */
static void drop_thousands(char *s)
{
    const char *p = s + (*s == '-');
    size_t lead = strspn(p, "0123456789");
    if (lead == 0 || lead > 3 || p[lead] != ',') return;
    for (p += lead; *p == ','; p += 4)
        if (strspn(p + 1, "0123456789") < 3 || isdigit((unsigned char)p[4])) return;
    if (*p && *p != '.') return;
    char *o = s;
    for (const char *q = s; *q; q++)
        if (*q != ',') *o++ = *q;
    *o = '\0';
}

/* The last touches on the rewritten text, in place. */
static void tidy(char *s)
{
    size_t n = strlen(s);
    while (n && s[n - 1] == '.')
        s[--n] = '\0';
    char *eq = strchr(s, '=');
    if (eq && !strchr(eq + 1, '=') && eq - s <= 2 && eq > s) /* "x=3", "AB=5": the value */
        memmove(s, eq + 1, strlen(eq + 1) + 1);
    n = strlen(s);
    if (n >= 3 && s[0] == '(' && s[n - 1] == ')') { /* a choice "(C)" or "(113)" */
        s[n - 1] = '\0';
        if ((n == 3 && isalpha((unsigned char)s[1])) || is_integer(s + 1))
            memmove(s, s + 1, n - 1);
        else
            s[n - 1] = ')';
    }
    drop_thousands(s);
    if (is_integer(s)) {
        char *d = s + (*s == '-');
        size_t z = strspn(d, "0");
        if (z == strlen(d)) z--;
        memmove(d, d + z, strlen(d + z) + 1);
        if (!strcmp(s, "-0")) strcpy(s, "0");
    }
}

int s1_answer_normalize(const char *answer, char **out, s1_err *err)
{
    sbuf a = {0}, b = {0};
    int rc = rewrite(answer, &a);
    if (!rc) rc = brace_args(a.p, &b);
    free(a.p);
    if (rc < 0) {
        free(b.p);
        return s1_errf(err, "answer: out of memory normalizing \"%.60s\"", answer);
    }
    tidy(b.p);
    *out = b.p;
    return 0;
}

/* ---- grading --------------------------------------------------------- */

/* A decimal number filling all of s[0..n). */
static int parse_decimal(const char *s, size_t n, double *v)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf || strspn(s, "-0123456789.") < n) return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    *v = strtod(buf, &end);
    return *end == '\0' && strchr("0123456789.", buf[n - 1]) && !isinf(*v);
}

/* A normalized answer that is a number: 3, -0.5, \frac{a}{b}, -\frac{a}{b}, a/b. */
static int parse_number(const char *s, double *v)
{
    double num, den, sign = 1;
    if (parse_decimal(s, strlen(s), v)) return 1;
    if (*s == '-') s++, sign = -1;
    if (!strncmp(s, "\\frac{", 6)) {
        size_t mid = close_brace(s, 5), end = mid && s[mid] == '{' ? close_brace(s, mid) : 0;
        if (!end || s[end] || !parse_decimal(s + 6, mid - 7, &num) ||
            !parse_decimal(s + mid + 1, end - mid - 2, &den))
            return 0;
    } else {
        const char *slash = strchr(s, '/');
        if (!slash || !parse_decimal(s, (size_t)(slash - s), &num) ||
            !parse_decimal(slash + 1, strlen(slash + 1), &den))
            return 0;
    }
    if (den == 0) return 0;
    *v = sign * num / den;
    return 1;
}

/* 1 when a and r are equal after normalization or as numbers. */
static int same_answer(const char *answer, const char *reference, s1_err *err)
{
    _cleanup_free_ char *a = NULL, *r = NULL;
    if (s1_answer_normalize(answer, &a, err) < 0 || s1_answer_normalize(reference, &r, err) < 0)
        return -1;
    if (!strcmp(a, r)) return 1;
    if (is_integer(a) && is_integer(r)) return 0; /* exact: doubles would round long ones */
    double x, y;
    if (!parse_number(a, &x) || !parse_number(r, &y)) return 0;
    return fabs(x - y) <= 1e-9 * fmax(1.0, fmax(fabs(x), fabs(y)));
}

/* n without trailing blanks and periods. */
static size_t trim_end(const char *s, size_t n)
{
    while (n && (isspace((unsigned char)s[n - 1]) || s[n - 1] == '.'))
        n--;
    return n;
}

/* Index of the '{' that the '}' at s[close] closes, or SIZE_MAX. */
static size_t open_brace(const char *s, size_t close)
{
    int depth = 0;
    for (size_t i = close + 1; i-- > 0;) {
        if (s[i] == '}') depth++;
        if (s[i] == '{' && --depth == 0) return i;
    }
    return SIZE_MAX;
}

/* A unit's words: letters, blanks and periods, at least one letter. */
static int is_unit_text(const char *s, size_t n)
{
    int letters = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_letter(s[i]))
            letters++;
        else if (!isspace((unsigned char)s[i]) && s[i] != '.')
            return 0;
    }
    return letters > 0;
}

/* The length of s[0..n) without a unit at its end: a wrapper of words
 * ("\text{ minutes}", "\mbox{cm}^2") or words after a blank ("12 apples").
 * n when there is none. */
static size_t unit_start(const char *s, size_t n)
{
    static const char *const powers[] = {"^2", "^3", "^{2}", "^{3}"};
    for (int i = 0; i < 4; i++) {
        size_t k = strlen(powers[i]);
        if (n > k && !strncmp(s + n - k, powers[i], k)) {
            n -= k;
            break;
        }
    }
    if (n && s[n - 1] == '}') {
        size_t open = open_brace(s, n - 1);
        for (size_t w = 0; open != SIZE_MAX && w < sizeof wrappers / sizeof *wrappers; w++) {
            size_t k = strlen(wrappers[w]) - 1; /* the name, without its '{' */
            if (open >= k && !strncmp(s + open - k, wrappers[w], k) &&
                is_unit_text(s + open + 1, n - open - 2))
                return open - k;
        }
        return SIZE_MAX;
    }
    size_t start = n;
    while (start && (is_letter(s[start - 1]) || s[start - 1] == ' '))
        start--;
    return start < n && start && isspace((unsigned char)s[start]) ? start : SIZE_MAX;
}

/* The number a unit follows ("204 \text{ minutes}" -> "204"), malloc'ed;
 * NULL when answer is not a number with a unit. */
static char *number_before_unit(const char *answer)
{
    size_t n = trim_end(answer, strlen(answer));
    size_t cut = unit_start(answer, n);
    if (cut == SIZE_MAX || cut == 0) return NULL;
    char *number = dup_trimmed(answer, cut);
    _cleanup_free_ char *norm = NULL;
    s1_err ignored = {{0}};
    double v;
    if (number && s1_answer_normalize(number, &norm, &ignored) == 0 && parse_number(norm, &v))
        return number;
    free(number);
    return NULL;
}

int s1_answer_grade(const char *answer, const char *reference, s1_err *err)
{
    int rc = same_answer(answer, reference, err);
    if (rc) return rc;
    /* A unit on either side is not part of a numeric answer. */
    _cleanup_free_ char *a = number_before_unit(answer), *r = number_before_unit(reference);
    if (a && (rc = same_answer(a, reference, err))) return rc;
    if (r && (rc = same_answer(answer, r, err))) return rc;
    return a && r ? same_answer(a, r, err) : 0;
}

int s1_answer_judge(const char *text, const char *reference, char **extracted, int *grade,
                    s1_err *err)
{
    *extracted = NULL;
    *grade = -1;
    if (text && s1_answer_extract(text, extracted, err) < 0) return -1;
    if (!reference) return 0;
    int g = *extracted ? s1_answer_grade(*extracted, reference, err) : 0;
    if (g < 0) return -1;
    *grade = g;
    return 0;
}

/* Each answer joins the group of the first earlier answer it grades equal
 * to; groups are named by that first member. Quadratic in n, which is a
 * problem's samples (at most 1024). */
int s1_answer_vote(const char *const *answers, int n, int *winner, int *votes, s1_err *err)
{
    _cleanup_free_ int *count = calloc((size_t)(n > 0 ? n : 1), sizeof *count);
    if (!count) return s1_errf(err, "answer: out of memory voting over %d samples", n);
    *winner = -1, *votes = 0;
    for (int i = 0; i < n; i++) {
        if (!answers[i]) continue;
        int group = i;
        for (int g = 0; g < i && group == i; g++) {
            if (!count[g]) continue;
            int eq = s1_answer_grade(answers[i], answers[g], err);
            if (eq < 0) return -1;
            if (eq) group = g;
        }
        count[group]++;
        if (count[group] > *votes || (count[group] == *votes && group < *winner))
            *winner = group, *votes = count[group];
    }
    return 0;
}
