-- 0009_provenance_votes: which model files and which s1d made each result,
-- the majority vote of each job's samples, and a run's statistics in SQL.
--
-- Provenance. The
-- daemon fingerprints its model at load (SHA-256 of config.json and of each
-- safetensors file's name, size and header; daemon/fingerprint.h) and writes
-- it, with its version, into every result row and its worker row. A run is
-- queued before any daemon has seen it, so a run's provenance is what its
-- results record: s1.run_provenance, one row per run, with every distinct
-- value (more than one means the run was served by different models or
-- versions, which reports and compare point out).

ALTER TABLE s1.results
    ADD COLUMN model_fingerprint text,
    ADD COLUMN s1d_version text;

ALTER TABLE s1.workers ADD COLUMN model_fingerprint text;

CREATE VIEW s1.run_provenance WITH (security_invoker = true) AS
SELECT j.bench_run_id,
       count(r.id) AS results,
       string_agg(DISTINCT r.model_fingerprint, ', ' ORDER BY r.model_fingerprint)
           AS model_fingerprints,
       string_agg(DISTINCT r.s1d_version, ', ' ORDER BY r.s1d_version) AS s1d_versions,
       string_agg(DISTINCT r.backend, ', ' ORDER BY r.backend) AS backends,
       string_agg(DISTINCT r.gpus::text, ', ' ORDER BY r.gpus::text) AS gpus
  FROM s1.jobs j
  JOIN s1.results r ON r.job_id = j.id
 WHERE j.bench_run_id IS NOT NULL
 GROUP BY j.bench_run_id;

GRANT SELECT ON s1.run_provenance TO s1_submit, s1_worker, s1_read, s1_admin;

-- Votes. Per job and rung, the row whose extracted answer most samples gave
-- (answers that grade equal to each other are one vote; a tie goes to the
-- lowest sample: store/answer.h s1_answer_vote) has majority = true and its
-- group's size in votes. s1d marks it when it writes the rows; `s1ctl bench
-- regrade` marks it again with the answers it extracts. NULL: not voted yet
-- (rows written before this migration, until they are regraded).
ALTER TABLE s1.results
    ADD COLUMN majority boolean,
    ADD COLUMN votes int CHECK (votes > 0),
    ADD CONSTRAINT results_votes_only_on_the_majority CHECK ((votes IS NOT NULL) = coalesce(majority, false));

-- The Wilson score interval of a share p of n trials at 95% (z = 1.959964,
-- the constant of store/bench.c s1_bench_wilson, so both give the same
-- digits). NULL when n = 0.
CREATE FUNCTION s1.wilson(p float8, n bigint, upper boolean) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN n > 0 THEN
           CASE WHEN upper THEN least(1, c + h) ELSE greatest(0, c - h) END END
      FROM (SELECT (p + z2n / 2) / (1 + z2n) AS c,
                   1.959964 * sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n) AS h
              FROM (SELECT 1.959964 ^ 2 / nullif(n, 0) AS z2n) z) w
$$;

-- The unbiased pass@k of one problem with n samples, c of them right:
-- 1 - C(n-c, k) / C(n, k), as a product so nothing overflows (store/bench.c
-- s1_bench_pass_at_k).
CREATE FUNCTION s1.pass_at_k(n bigint, c bigint, k bigint) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN n - c < k THEN 1
                ELSE 1 - coalesce((SELECT exp(sum(ln(1 - k::float8 / i)))
                                     FROM generate_series(n - c + 1, n) AS i), 1) END
$$;

-- The numbers of `s1ctl bench report --json` per run and budget: graded
-- samples n, accuracy with its 95% Wilson interval, and over the problems
-- with a graded sample (voted_problems): maj@k (the majority answer is
-- right) and pass@k with k the run's samples per problem. Every budget of
-- the run's ladder has a row, also before it has results.
CREATE VIEW s1.scaling_stats WITH (security_invoker = true) AS
WITH per_problem AS (
    SELECT j.bench_run_id, coalesce(r.budget, (j.policy ->> 'max_think')::int) AS budget,
           j.suite_problem_id,
           count(*) AS samples,
           count(r.grade) AS graded,
           count(*) FILTER (WHERE r.grade) AS correct,
           coalesce(bool_or(r.majority AND r.grade), false) AS majority_right
      FROM s1.jobs j JOIN s1.results r ON r.job_id = j.id
     WHERE j.bench_run_id IS NOT NULL
     GROUP BY 1, 2, 3),
per_budget AS (
    SELECT p.bench_run_id, p.budget,
           sum(p.graded)::bigint AS n,
           sum(p.correct)::float8 / nullif(sum(p.graded), 0) AS accuracy,
           count(*) FILTER (WHERE p.graded > 0) AS voted_problems,
           avg(p.majority_right::int) FILTER (WHERE p.graded > 0) AS maj_at_k,
           avg(s1.pass_at_k(p.samples, p.correct, least(b.samples, p.samples)))
               FILTER (WHERE p.graded > 0) AS pass_at_k
      FROM per_problem p JOIN s1.bench_runs b ON b.id = p.bench_run_id
     GROUP BY 1, 2)
SELECT b.id AS bench_run_id, u.budget, b.samples AS k,
       coalesce(s.n, 0) AS n, s.accuracy,
       s1.wilson(s.accuracy, s.n, false) AS ci_low,
       s1.wilson(s.accuracy, s.n, true) AS ci_high,
       coalesce(s.voted_problems, 0) AS voted_problems, s.maj_at_k, s.pass_at_k
  FROM s1.bench_runs b
 CROSS JOIN unnest(b.budgets) AS u(budget)
  LEFT JOIN per_budget s ON s.bench_run_id = b.id AND s.budget = u.budget;

GRANT SELECT ON s1.scaling_stats TO s1_submit, s1_worker, s1_read, s1_admin;
