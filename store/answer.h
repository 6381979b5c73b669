/* store/answer.h — the final answer of an answer text and its grade against a
 * reference answer, MATH-style: equal after normalizing LaTeX notation, or
 * equal as numbers. Used when results are written and by benchmark reports.
 * Pure string functions; no database. */
#ifndef S1_ANSWER_H
#define S1_ANSWER_H

#include "err.h"

/* The final answer of text (*answer malloc'ed, owned by the caller): the
 * content of the last well-formed \boxed{...}, \fbox{...} or \framebox{...};
 * else the line after the last "Final Answer:"; else the last number.
 * Returns 1 when found, 0 when text has none (*answer = NULL), -1 on error. */
int s1_answer_extract(const char *text, char **answer, s1_err *err);

/* The comparable form of an answer (*out malloc'ed): no $, spaces, \left
 * \right, \! \, spacing, \text{} wrappers, degrees, %, trailing "."; \dfrac
 * and \tfrac as \frac; \frac12 as \frac{1}{2}; "x = 3" as "3"; "1,000" as
 * "1000"; "033" as "33". Returns 0, or -1 on error. */
int s1_answer_normalize(const char *answer, char **out, s1_err *err);

/* 1 when answer and reference are equal after normalization or as numbers
 * (integers, decimals, \frac{a}{b}, a/b), also once a unit after a number is
 * dropped on either side ("204 \text{ minutes}" grades equal to "204");
 * 0 when not; -1 on error. docs/grading.md states the whole rule. */
int s1_answer_grade(const char *answer, const char *reference, s1_err *err);

/* What a result records of its answer text: the extracted answer
 * (*extracted malloc'ed, NULL when none or text is NULL) and the grade
 * against reference (1 or 0; -1 without a reference; no answer found grades
 * 0). The one rule s1d applies when it writes a result and `s1ctl bench
 * regrade` when it grades again. Returns 0, or -1 on error. */
int s1_answer_judge(const char *text, const char *reference, char **extracted, int *grade,
                    s1_err *err);

/* Majority voting over the extracted answers of a problem's samples
 * (NULL = no answer, no vote): answers are one vote when they grade equal
 * to each other (s1_answer_grade, so "\\dfrac{1}{2}" and "0.5" agree). Sets
 * *winner to the index of the first answer of the largest group and *votes
 * to its size; a tie goes to the group whose first answer came first (the
 * lowest sample). *winner = -1 when no sample has an answer. Returns 0, or
 * -1 on error. */
int s1_answer_vote(const char *const *answers, int n, int *winner, int *votes, s1_err *err);

#endif
