-- 0005_ladders: a budget or Wait ladder in one job (policy keys "budgets" and
-- "waits"), one result row per (sample, rung) carrying the rung's budget and
-- wait count, ends of thinking forced by the context, and the context each
-- worker serves. Rows written before stay readable: they are rung 0, with the
-- budget and wait count of their job's policy.

-- True when v is a JSON array of 1 to 32 integers from lo, strictly
-- ascending: what engine/engine.h's s1_ladder holds. A loop over simple
-- expressions, no query, for the same reason as s1.policy_is_valid.
CREATE FUNCTION s1.json_ladder_is_valid(v jsonb, lo int) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    prev numeric := lo - 1;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) <> 'array' OR jsonb_array_length(v) NOT BETWEEN 1 AND 32 THEN
        RETURN false;
    END IF;
    FOR i IN 0 .. jsonb_array_length(v) - 1 LOOP
        IF NOT s1.json_int_between(v -> i, prev + 1, 2147483647) THEN
            RETURN false;
        END IF;
        prev := (v ->> i)::numeric;
    END LOOP;
    RETURN true;
END
$$;

-- The policy of 0001 with the two ladders: "budgets" replaces max_think,
-- "waits" replaces ignore_stop, one ladder per job, and min_think must hold
-- at the smallest budget.
CREATE OR REPLACE FUNCTION s1.policy_is_valid(p jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN CASE WHEN jsonb_typeof(p) <> 'object' THEN false ELSE
               (p - ARRAY['max_think', 'min_think', 'ignore_stop', 'max_answer', 'system',
                          'think_end', 'answer_header', 'answer_prefix', 'wait_string',
                          'budgets', 'waits']) = '{}'::jsonb
           AND (NOT p ? 'max_think'   OR s1.json_int_between(p -> 'max_think', 1, 2147483647))
           AND (NOT p ? 'min_think'   OR s1.json_int_between(p -> 'min_think', 0, 2147483647))
           AND (NOT p ? 'ignore_stop' OR s1.json_int_between(p -> 'ignore_stop', 0, 2147483647))
           AND (NOT p ? 'max_answer'  OR s1.json_int_between(p -> 'max_answer', 0, 2147483647))
           AND CASE WHEN s1.json_int_between(p -> 'max_think', 1, 2147483647)
                     AND s1.json_int_between(p -> 'min_think', 0, 2147483647)
                    THEN (p ->> 'min_think')::int <= (p ->> 'max_think')::int
                    ELSE true END
           AND (NOT p ? 'budgets' OR (s1.json_ladder_is_valid(p -> 'budgets', 1)
                                      AND NOT p ? 'max_think' AND NOT p ? 'waits'))
           AND (NOT p ? 'waits'   OR (s1.json_ladder_is_valid(p -> 'waits', 0)
                                      AND NOT p ? 'ignore_stop'))
           AND CASE WHEN s1.json_ladder_is_valid(p -> 'budgets', 1)
                     AND s1.json_int_between(p -> 'min_think', 0, 2147483647)
                    THEN (p ->> 'min_think')::int <= (p -> 'budgets' ->> 0)::int
                    ELSE true END
           AND (NOT p ? 'system'        OR jsonb_typeof(p -> 'system') = 'string')
           AND (NOT p ? 'think_end'     OR jsonb_typeof(p -> 'think_end') = 'string')
           AND (NOT p ? 'answer_header' OR jsonb_typeof(p -> 'answer_header') = 'string')
           AND (NOT p ? 'answer_prefix' OR jsonb_typeof(p -> 'answer_prefix') = 'string')
           AND (NOT p ? 'wait_string'   OR jsonb_typeof(p -> 'wait_string') = 'string')
           AND coalesce(p ->> 'think_end', 'x') <> ''
           AND coalesce(p ->> 'wait_string', 'x') <> ''
               END;
END
$$;

-- The budgets a job runs: its ladder's, else its max_think (NULL: none).
CREATE FUNCTION s1.job_budgets(p jsonb) RETURNS SETOF int
LANGUAGE sql IMMUTABLE AS $$
    SELECT b::int FROM jsonb_array_elements_text(p -> 'budgets') AS b
    UNION ALL
    SELECT (p ->> 'max_think')::int WHERE NOT p ? 'budgets'
$$;

-- rung: the index in the job's ladder (0 without one). budget and
-- ignore_stop: the single-run settings this row equals (the rung's value on
-- a ladder, the job's otherwise; budget NULL = none). context_end: the end
-- of thinking was forced because the answer reserve was all the context had
-- left, not by the budget.
ALTER TABLE s1.results
    ADD COLUMN rung int NOT NULL DEFAULT 0 CHECK (rung BETWEEN 0 AND 31),
    ADD COLUMN budget int,
    ADD COLUMN ignore_stop int,
    ADD COLUMN context_end boolean;

UPDATE s1.results r
   SET budget = (j.policy ->> 'max_think')::int,
       ignore_stop = coalesce((j.policy ->> 'ignore_stop')::int, 0),
       context_end = false
  FROM s1.jobs j
 WHERE j.id = r.job_id;

ALTER TABLE s1.results DROP CONSTRAINT results_job_id_sample_key;
ALTER TABLE s1.results ADD CONSTRAINT results_job_sample_rung_key UNIQUE (job_id, sample, rung);

-- The context of the model a worker serves, so that s1ctl can refuse a
-- budget that cannot fit it with its answer reserve.
ALTER TABLE s1.workers ADD COLUMN max_context int CHECK (max_context > 0);

-- One readable row per job: the answer and counts are those of sample 0 at
-- the ladder's last rung (the largest budget or wait count); budget is that
-- rung's. New columns: ladder ('budgets', 'waits' or NULL), rungs, context_end.
CREATE OR REPLACE VIEW s1.job_summary WITH (security_invoker = true) AS
SELECT j.id,
       j.state,
       j.queue,
       j.priority,
       coalesce(r.budget, (j.policy ->> 'max_think')::int,
                (j.policy -> 'budgets' ->> -1)::int) AS budget,
       j.attempt,
       j.max_attempts,
       j.cancel_requested,
       CASE WHEN j.state = 'running' OR r.thinking_tokens IS NULL THEN j.progress_thinking
            ELSE r.thinking_tokens END AS thinking,
       j.progress_tokens,
       r.prompt_tokens,
       r.thinking_tokens,
       r.forced_tokens,
       r.answer_tokens,
       r.waits,
       r.forced_end,
       r.stop_reason,
       r.extracted_answer AS answer,
       j.reference_answer,
       r.grade,
       j.samples,
       j.model,
       j.worker,
       j.created_at,
       j.started_at,
       j.finished_at,
       j.finished_at - j.started_at AS run_time,
       j.error,
       CASE WHEN j.policy ? 'budgets' THEN 'budgets'
            WHEN j.policy ? 'waits' THEN 'waits' END AS ladder,
       coalesce(jsonb_array_length(coalesce(j.policy -> 'budgets', j.policy -> 'waits')), 1)
           AS rungs,
       r.context_end
  FROM s1.jobs j
  LEFT JOIN LATERAL (SELECT * FROM s1.results x
                      WHERE x.job_id = j.id AND x.sample = 0
                      ORDER BY x.rung DESC LIMIT 1) r ON true;

-- The scaling curve per bench run and budget: a ladder job counts at each of
-- its budgets, with the result rows of that rung (a row without a budget has
-- its job's).
CREATE OR REPLACE VIEW s1.scaling_curve WITH (security_invoker = true) AS
SELECT j.bench_run_id,
       b.budget,
       count(DISTINCT j.id) AS jobs,
       count(DISTINCT j.id) FILTER (WHERE j.state = 'succeeded') AS succeeded,
       count(r.id) AS samples,
       avg(r.grade::int) AS accuracy,
       avg(r.thinking_tokens) AS mean_thinking_tokens,
       avg((r.thinking_tokens <= b.budget)::int) AS budget_respected
  FROM s1.jobs j
 CROSS JOIN LATERAL s1.job_budgets(j.policy) AS b(budget)
  LEFT JOIN s1.results r
         ON r.job_id = j.id
        AND coalesce(r.budget, (j.policy ->> 'max_think')::int) IS NOT DISTINCT FROM b.budget
 WHERE j.bench_run_id IS NOT NULL
 GROUP BY j.bench_run_id, b.budget;
