/* tests/store/test_answer.c — answer extraction, normalization and grading;
 * and the real-data check: the \boxed{} answer of every reference solution
 * of MATH500 and AIME24 grades equal to the benchmark's answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shared.h"
#include <jansson.h>

#include "answer.h"
#include "cleanup.h"

static void assert_extracts(const char *text, const char *want)
{
    s1_err err = {{0}};
    _cleanup_free_ char *got = NULL;
    int rc = s1_answer_extract(text, &got, &err);
    if (!want) {
        assert_int_equal(rc, 0);
        assert_null(got);
        return;
    }
    assert_int_equal(rc, 1);
    assert_string_equal(got, want);
}

static void assert_normalizes(const char *answer, const char *want)
{
    s1_err err = {{0}};
    _cleanup_free_ char *got = NULL;
    assert_int_equal(s1_answer_normalize(answer, &got, &err), 0);
    assert_string_equal(got, want);
}

static void assert_grade(const char *answer, const char *reference, int want)
{
    s1_err err = {{0}};
    int got = s1_answer_grade(answer, reference, &err);
    if (got != want)
        fail_msg("grade(\"%s\", \"%s\") = %d, expected %d", answer, reference, got, want);
}

static void test_the_last_boxed_answer_is_extracted(void **state)
{
    (void)state;
    assert_extracts("first \\boxed{1}, then \\boxed{\\frac{a}{b}}.", "\\frac{a}{b}");
    assert_extracts("$\\boxed{ \\{1\\pm\\sqrt{5},-2\\} }$", "\\{1\\pm\\sqrt{5},-2\\}");
    assert_extracts("so \\fbox{7} wins", "7");
    assert_extracts("$\\framebox{204}$ minutes", "204");
    assert_extracts("answer \\boxed 5$.", "5");
    assert_extracts("answer \\boxed {6}.", "6");
}

static void test_a_box_cut_off_falls_back_to_the_one_before(void **state)
{
    (void)state;
    assert_extracts("\\boxed{12} and then \\boxed{\\frac{1}{", "12");
    assert_extracts("only a cut box \\boxed{7", "7"); /* the last number, then */
}

static void test_final_answer_line_is_used_without_a_box(void **state)
{
    (void)state;
    assert_extracts("Wait, 3.\nFinal Answer: 42 apples\nmore text", "42 apples");
    assert_extracts("Final Answer: 1\nFinal Answer:   $x=3$  ", "$x=3$");
    assert_extracts("Final Answer: The final answer is 17.", "17.");
}

static void test_the_last_number_is_used_without_box_or_final_answer(void **state)
{
    (void)state;
    assert_extracts("we get 12, then -1,234.5 in total.", "-1,234.5");
    assert_extracts("no digits here", NULL);
    assert_extracts("", NULL);
}

static void test_notation_is_normalized_away(void **state)
{
    (void)state;
    assert_normalizes("$\\left( 3, \\dfrac{\\pi}{2} \\right)$", "(3,\\frac{\\pi}{2})");
    assert_normalizes("\\text{(C)}", "C");
    assert_normalizes("75^\\circ", "75");
    assert_normalizes("90^{\\circ}.", "90");
    assert_normalizes("10\\%", "10");
    assert_normalizes("\\tfrac12", "\\frac{1}{2}");
    assert_normalizes("11\\sqrt2", "11\\sqrt{2}");
    assert_normalizes("\\frac\\pi2", "\\frac{\\pi}{2}");
    assert_normalizes("\\frac{1}{", "\\frac{1}{");
    assert_normalizes("1,000,000", "1000000");
    assert_normalizes("-2,1", "-2,1");
    assert_normalizes("033", "33");
    assert_normalizes("000", "0");
    assert_normalizes("x = 5", "5");
    assert_normalizes("15\\mbox{ cm}^2", "15cm^2");
    assert_normalizes("\\leftarrow", "\\leftarrow");
    assert_normalizes("", "");
}

static void test_numbers_grade_equal_by_value(void **state)
{
    (void)state;
    assert_grade("0.5", "\\frac{1}{2}", 1);
    assert_grade("1/2", "\\dfrac12", 1);
    assert_grade("-\\frac{24}{25}", "-0.96", 1);
    assert_grade("4.50", "4.5", 1);
    assert_grade("1,000", "1000", 1);
    assert_grade("0.333", "\\frac{1}{3}", 0);
    assert_grade("\\frac{1}{0}", "\\frac{2}{0}", 0);
    assert_grade("2", "3", 0);
    assert_grade("12345678901234567890123", "12345678901234567890124", 0);
    assert_grade("-0", "0", 1);
}

static void test_non_numbers_grade_equal_only_after_normalization(void **state)
{
    (void)state;
    assert_grade("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\dfrac{\\pi}{2})", 1);
    assert_grade("p - q", "p-q", 1);
    assert_grade("q - p", "p-q", 0);
    assert_grade("\\text{(C)}", "C", 1);
    assert_grade("", "5", 0);
}

static void test_a_unit_after_a_number_is_not_part_of_the_answer(void **state)
{
    (void)state;
    assert_grade("204 \\text{ minutes}", "204", 1);
    assert_grade("5\\mbox{ cm}^2", "5", 1);
    assert_grade("12 apples", "12", 1);
    assert_grade("0.5 \\text{ dollars}", "\\frac{1}{2}", 1);
    assert_grade("30", "30 \\text{ degrees}", 1);
    assert_grade("7 \\text{ cm}", "7 \\mathrm{m}", 1); /* units are dropped, not compared */
    assert_grade("204 \\text{ minutes}", "205", 0);
    assert_grade("5x", "5", 0);           /* a variable, not a unit */
    assert_grade("\\text{even}", "0", 0); /* nothing before the words */
    assert_grade("2\\sqrt{2}", "2", 0);
    assert_grade("(3, 4) cm", "(3,4)", 0); /* a unit only follows a number */
}

static void assert_vote(const char *const *answers, int n, int want_winner, int want_votes)
{
    s1_err err = {{0}};
    int winner, votes;
    assert_int_equal(s1_answer_vote(answers, n, &winner, &votes, &err), 0);
    if (winner != want_winner || votes != want_votes)
        fail_msg("vote: winner %d with %d votes, expected %d with %d", winner, votes, want_winner,
                 want_votes);
}

static void test_votes_group_answers_the_grader_calls_equal_and_ties_go_to_the_first(void **state)
{
    (void)state;
    const char *const same_value[] = {"\\dfrac{1}{2}", "3", "0.5", "1/2"};
    assert_vote(same_value, 4, 0, 3); /* three ways of writing 1/2 */
    const char *const tie[] = {"7", "8", "8", "7"};
    assert_vote(tie, 4, 0, 2); /* 2 against 2: the group of sample 0 */
    const char *const later_majority[] = {"4", NULL, "5", "5 \\text{ cm}"};
    assert_vote(later_majority, 4, 2, 2);
    const char *const none[] = {NULL, NULL};
    assert_vote(none, 2, -1, 0);
    assert_vote(none, 0, -1, 0);
}

static void test_model_answers_grade_against_references(void **state)
{
    (void)state;
    static const char *const cases[][3] = {
        {"Final Answer: The final answer is $\\boxed{\\dfrac{1}{2}}$", "\\frac{1}{2}", "1"},
        {"...so 0.5 it is.\nFinal Answer: 0.5", "\\frac12", "1"},
        {"Wait, that gives $x = 7$.\nFinal Answer: $x = 7$.", "7", "1"},
        {"the total is 1,024 apples", "1024", "1"},
        {"\\boxed{\\text{(B)}}", "\\textbf{(B)}", "1"},
        {"Final Answer: The answer is 8", "9", "0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        s1_err err = {{0}};
        _cleanup_free_ char *got = NULL;
        assert_int_equal(s1_answer_extract(cases[i][0], &got, &err), 1);
        assert_grade(got, cases[i][1], cases[i][2][0] - '0');
    }
}

/* Calls fn on each row of a benchmark file of $S1_SHARED; returns the count. */
static int for_each_row(const char *file,
                        void (*fn)(const json_t *row, const char *file, int *pass), int *pass)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/benchmarks/%s", getenv("S1_SHARED"), file);
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("%s: cannot open", path);
    char *line = NULL;
    size_t cap = 0;
    int rows = 0;
    *pass = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t jerr;
        json_t *row = json_loads(line, 0, &jerr);
        if (!row) fail_msg("%s: line %d: %s", path, rows + 1, jerr.text);
        fn(row, file, pass);
        json_decref(row);
        rows++;
    }
    free(line);
    fclose(f);
    return rows;
}

static const char *field(const json_t *row, const char *key)
{
    const char *v = json_string_value(json_object_get(row, key));
    if (!v) fail_msg("a benchmark row has no string \"%s\"", key);
    return v;
}

/* The \boxed{} answer of the solution grades equal to the answer. */
static void grade_solution(const json_t *row, const char *file, int *pass)
{
    s1_err err = {{0}};
    _cleanup_free_ char *got = NULL;
    s1_answer_extract(field(row, "solution"), &got, &err);
    int ok = got && s1_answer_grade(got, field(row, "answer"), &err) == 1;
    *pass += ok;
    if (!ok)
        printf("# %s %s: extracted \"%s\", answer \"%s\"\n", file, field(row, "id"),
               got ? got : "(none)", field(row, "answer"));
}

static void test_reference_solutions_grade_equal_to_their_answers(void **state)
{
    (void)state;
    int pass;
    int total = for_each_row("math500.jsonl", grade_solution, &pass);
    printf("# math500: %d of %d reference solutions grade equal\n", pass, total);
    assert_int_equal(total, 500);
    assert_int_equal(pass, 500); /* the floor: all of them, none needs symbolic algebra */
    total = for_each_row("aime24.jsonl", grade_solution, &pass);
    printf("# aime24: %d of %d reference solutions grade equal\n", pass, total);
    assert_int_equal(total, 30);
    assert_int_equal(pass, 30);
}

/* The answer written another way, as a model might: in $...$ with a final
 * period, \dfrac for \frac, a space after each comma. */
static void grade_restyled_answer(const json_t *row, const char *file, int *pass)
{
    const char *ref = field(row, "answer");
    char styled[4096], *o = styled;
    o += sprintf(o, "$ ");
    for (const char *p = ref; *p && o < styled + sizeof styled - 16; p++) {
        if (!strncmp(p, "\\frac", 5)) {
            o += sprintf(o, "\\dfrac");
            p += 4;
            continue;
        }
        *o++ = *p;
        if (*p == ',') *o++ = ' ';
    }
    strcpy(o, " $.");
    s1_err err = {{0}};
    int ok = s1_answer_grade(styled, ref, &err) == 1;
    *pass += ok;
    if (!ok)
        printf("# %s %s: \"%s\" does not grade equal to \"%s\"\n", file, field(row, "id"), styled,
               ref);
}

static void test_restyled_reference_answers_still_grade_equal(void **state)
{
    (void)state;
    int pass;
    int total = for_each_row("math500.jsonl", grade_restyled_answer, &pass);
    assert_int_equal(pass, total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_last_boxed_answer_is_extracted),
        cmocka_unit_test(test_a_box_cut_off_falls_back_to_the_one_before),
        cmocka_unit_test(test_final_answer_line_is_used_without_a_box),
        cmocka_unit_test(test_the_last_number_is_used_without_box_or_final_answer),
        cmocka_unit_test(test_notation_is_normalized_away),
        cmocka_unit_test(test_numbers_grade_equal_by_value),
        cmocka_unit_test(test_non_numbers_grade_equal_only_after_normalization),
        cmocka_unit_test(test_a_unit_after_a_number_is_not_part_of_the_answer),
        cmocka_unit_test(test_votes_group_answers_the_grader_calls_equal_and_ties_go_to_the_first),
        cmocka_unit_test(test_model_answers_grade_against_references),
        cmocka_unit_test(test_reference_solutions_grade_equal_to_their_answers),
        cmocka_unit_test(test_restyled_reference_answers_still_grade_equal),
    };
    /* The last two cases grade the real MATH500 reference solutions. */
    size_t n = sizeof tests / sizeof *tests;
    if (!s1test_shared("benchmarks/math500.jsonl", "the two MATH500 cases")) n -= 2;
    return _cmocka_run_group_tests("tests", tests, n, NULL, NULL);
}
