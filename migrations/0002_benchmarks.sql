-- 0002_benchmarks: suites of problems with reference answers, runs of a
-- suite at a ladder of budgets, and the scaling curve they produce.

-- A benchmark: named problems with reference answers.
CREATE TABLE s1.suites (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    description text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE s1.suite_problems (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    suite_id         bigint NOT NULL REFERENCES s1.suites (id) ON DELETE CASCADE,
    name             text NOT NULL,
    problem          text NOT NULL,
    reference_answer text NOT NULL,
    UNIQUE (suite_id, name)
);

-- One run of a suite: every problem at every budget of the ladder, on one model.
CREATE TABLE s1.bench_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    suite_id    bigint NOT NULL REFERENCES s1.suites (id),
    model       text,
    budgets     int[] NOT NULL CHECK (cardinality(budgets) > 0 AND 0 < ALL (budgets)),
    policy      jsonb NOT NULL DEFAULT '{}' CHECK (s1.policy_is_valid(policy)),
    sampling    jsonb NOT NULL DEFAULT '{}' CHECK (s1.sampling_is_valid(sampling)),
    samples     int NOT NULL DEFAULT 1 CHECK (samples BETWEEN 1 AND 1024),
    note        text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A benchmark job belongs to its run and problem.
ALTER TABLE s1.jobs
    ADD CONSTRAINT jobs_bench_run_fk FOREIGN KEY (bench_run_id)
        REFERENCES s1.bench_runs (id) ON DELETE CASCADE,
    ADD CONSTRAINT jobs_suite_problem_fk FOREIGN KEY (suite_problem_id)
        REFERENCES s1.suite_problems (id);
CREATE INDEX jobs_bench_run ON s1.jobs (bench_run_id) WHERE bench_run_id IS NOT NULL;

-- The s1 paper's scaling curve: per bench run and budget, accuracy and the
-- thinking actually spent. "Respected" = thinking tokens within the budget.
CREATE VIEW s1.scaling_curve AS
SELECT j.bench_run_id,
       (j.policy ->> 'max_think')::int AS budget,
       count(DISTINCT j.id) AS jobs,
       count(DISTINCT j.id) FILTER (WHERE j.state = 'succeeded') AS succeeded,
       count(r.id) AS samples,
       avg(r.grade::int) AS accuracy,
       avg(r.thinking_tokens) AS mean_thinking_tokens,
       avg((r.thinking_tokens <= (j.policy ->> 'max_think')::int)::int) AS budget_respected
  FROM s1.jobs j
  LEFT JOIN s1.results r ON r.job_id = j.id
 WHERE j.bench_run_id IS NOT NULL
 GROUP BY j.bench_run_id, (j.policy ->> 'max_think')::int;
