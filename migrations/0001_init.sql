-- 0001_init: the queue (jobs, results, workers), the notifications s1d and
-- s1ctl wait on, and the views people query. Benchmarks come in 0002.
-- The runner (store/db.c) has created schema s1 and s1.schema_migrations and
-- runs this file in one transaction.

CREATE TYPE s1.job_state AS ENUM ('queued', 'running', 'succeeded', 'failed', 'cancelled');

-- True when v is a JSON integer written as one (no fraction, no exponent)
-- between lo and hi: what the C side reads with json_integer_value().
CREATE FUNCTION s1.json_int_between(v jsonb, lo numeric, hi numeric) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(v) = 'number' AND (v #>> '{}') ~ '^-?[0-9]+$'
                THEN (v #>> '{}')::numeric BETWEEN lo AND hi
                ELSE false END
$$;

-- True when v is a JSON number between lo and hi (lo excluded when open).
CREATE FUNCTION s1.json_num_between(v jsonb, lo numeric, hi numeric, open boolean) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(v) = 'number'
                THEN (v #>> '{}')::numeric <= hi
                     AND ((v #>> '{}')::numeric > lo OR (NOT open AND (v #>> '{}')::numeric = lo))
                ELSE false END
$$;

-- A budget-forcing policy (engine/engine.h s1_policy_cfg): every key optional,
-- unknown keys rejected, so a policy the engine would misread cannot be stored.
-- PostgreSQL checks every CHECK on every UPDATE of the row, the claim's and
-- the completion's too, so this is one expression without subqueries: PL/pgSQL
-- plans it once per session and evaluates it in microseconds. (Queries in
-- the body cost ~10 us a call; a SQL function inlined into the CHECK would
-- be planned again by every statement, ~0.3 ms.)
CREATE FUNCTION s1.policy_is_valid(p jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN CASE WHEN jsonb_typeof(p) <> 'object' THEN false ELSE
               (p - ARRAY['max_think', 'min_think', 'ignore_stop', 'max_answer', 'system',
                          'think_end', 'answer_header', 'answer_prefix', 'wait_string']) = '{}'::jsonb
           AND (NOT p ? 'max_think'   OR s1.json_int_between(p -> 'max_think', 1, 2147483647))
           AND (NOT p ? 'min_think'   OR s1.json_int_between(p -> 'min_think', 0, 2147483647))
           AND (NOT p ? 'ignore_stop' OR s1.json_int_between(p -> 'ignore_stop', 0, 2147483647))
           AND (NOT p ? 'max_answer'  OR s1.json_int_between(p -> 'max_answer', 0, 2147483647))
           AND CASE WHEN s1.json_int_between(p -> 'max_think', 1, 2147483647)
                     AND s1.json_int_between(p -> 'min_think', 0, 2147483647)
                    THEN (p ->> 'min_think')::int <= (p ->> 'max_think')::int
                    ELSE true END
           AND (NOT p ? 'system'        OR jsonb_typeof(p -> 'system') = 'string')
           AND (NOT p ? 'think_end'     OR jsonb_typeof(p -> 'think_end') = 'string')
           AND (NOT p ? 'answer_header' OR jsonb_typeof(p -> 'answer_header') = 'string')
           AND (NOT p ? 'answer_prefix' OR jsonb_typeof(p -> 'answer_prefix') = 'string')
           AND (NOT p ? 'wait_string'   OR jsonb_typeof(p -> 'wait_string') = 'string')
           -- The delimiter and the wait string are fed as tokens: they cannot be empty.
           AND coalesce(p ->> 'think_end', 'x') <> ''
           AND coalesce(p ->> 'wait_string', 'x') <> ''
               END;
END
$$;

-- Sampling parameters (engine/engine.h s1_sampling), same rules, written the
-- same way for the same reason.
CREATE FUNCTION s1.sampling_is_valid(s jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN CASE WHEN jsonb_typeof(s) <> 'object' THEN false ELSE
               (s - ARRAY['temperature', 'top_p', 'top_k', 'seed']) = '{}'::jsonb
           AND (NOT s ? 'temperature' OR s1.json_num_between(s -> 'temperature', 0, 1e6, false))
           AND (NOT s ? 'top_p'       OR s1.json_num_between(s -> 'top_p', 0, 1, true))
           AND (NOT s ? 'top_k' OR s1.json_int_between(s -> 'top_k', 0, 2147483647))
           AND (NOT s ? 'seed'  OR s1.json_int_between(s -> 'seed', 0, 9223372036854775807))
               END;
END
$$;

CREATE TABLE s1.jobs (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue             text NOT NULL DEFAULT 'default',
    state             s1.job_state NOT NULL DEFAULT 'queued',
    priority          int NOT NULL DEFAULT 0,
    run_after         timestamptz NOT NULL DEFAULT now(),
    attempt           int NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts      int NOT NULL DEFAULT 3 CHECK (max_attempts > 0),
    worker            text,
    lease_until       timestamptz,
    cancel_requested  boolean NOT NULL DEFAULT false,
    progress_thinking int NOT NULL DEFAULT 0,
    progress_tokens   int NOT NULL DEFAULT 0,
    progress_at       timestamptz,
    error             text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    problem           text NOT NULL,
    reference_answer  text,
    model             text,
    samples           int NOT NULL DEFAULT 1 CHECK (samples BETWEEN 1 AND 1024),
    policy            jsonb NOT NULL DEFAULT '{}' CHECK (s1.policy_is_valid(policy)),
    sampling          jsonb NOT NULL DEFAULT '{}' CHECK (s1.sampling_is_valid(sampling)),
    bench_run_id      bigint, -- s1.bench_runs (0002_benchmarks)
    suite_problem_id  bigint, -- s1.suite_problems (0002_benchmarks)
    meta              jsonb
);

-- The claim reads only queued jobs, best first: keep that set small and ordered.
CREATE INDEX jobs_claim ON s1.jobs (queue, priority DESC, id) WHERE state = 'queued';
-- The reaper looks for running jobs whose lease expired.
CREATE INDEX jobs_running_lease ON s1.jobs (lease_until) WHERE state = 'running';

CREATE TABLE s1.results (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id           bigint NOT NULL REFERENCES s1.jobs (id) ON DELETE CASCADE,
    attempt          int NOT NULL,
    sample           int NOT NULL CHECK (sample >= 0),
    trace            text,
    answer           text,
    extracted_answer text,
    grade            boolean,
    prompt_tokens    int,
    thinking_tokens  int,
    forced_tokens    int,
    answer_tokens    int,
    waits            int,
    forced_end       boolean,
    stop_reason      text,
    prompt_ids       int[],
    token_ids        int[],
    queue_wait_ms    double precision,
    ttft_ms          double precision,
    decode_tps       double precision,
    model            text,
    backend          text,
    gpus             int,
    worker           text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, sample)
);

CREATE TABLE s1.workers (
    name           text PRIMARY KEY,
    host           text,
    pid            int,
    version        text,
    model          text,
    backend        text,
    gpus           int,
    queues         text[],
    state          text NOT NULL DEFAULT 'starting'
                   CHECK (state IN ('starting', 'running', 'draining', 'stopped')),
    started_at     timestamptz NOT NULL DEFAULT now(),
    heartbeat_at   timestamptz NOT NULL DEFAULT now(),
    jobs_in_flight int NOT NULL DEFAULT 0,
    jobs_done      bigint NOT NULL DEFAULT 0,
    tokens_per_s   double precision
);

-- Wakes idle daemons listening on s1_jobs: a job became claimable in this
-- queue (a submit, a retry, a requeue by the reaper).
CREATE FUNCTION s1.notify_jobs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('s1_jobs', NEW.queue);
    RETURN NULL;
END
$$;

-- A submit: one notification per queue per statement, however many rows it
-- inserted (PostgreSQL would fold the duplicates at commit anyway, after a
-- function call per row).
CREATE FUNCTION s1.notify_jobs_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('s1_jobs', q.queue) FROM (SELECT DISTINCT queue FROM inserted) AS q;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_insert AFTER INSERT ON s1.jobs
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION s1.notify_jobs_inserted();
CREATE TRIGGER jobs_notify_requeue AFTER UPDATE OF state ON s1.jobs
    FOR EACH ROW WHEN (NEW.state = 'queued' AND OLD.state <> 'queued')
    EXECUTE FUNCTION s1.notify_jobs();

-- Wakes `s1ctl wait` on every state change (payload "jobid thinking_tokens",
-- the format the daemon uses for progress). One call per statement: a claim
-- or a completion changes the state of a whole batch, and a call per row
-- cost ~4 us of each row's update.
CREATE FUNCTION s1.notify_state() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('s1_progress', n.id || ' ' || n.progress_thinking)
       FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id
      WHERE n.state IS DISTINCT FROM o.state
      ORDER BY n.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_state AFTER UPDATE ON s1.jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION s1.notify_state();

-- updated_at is the time of the last write, whoever made it. The daemon's
-- statements set it themselves (store/queue.c), so the function is called
-- only for the other writes, and for those that set it to another time.
CREATE FUNCTION s1.touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER jobs_touch BEFORE UPDATE ON s1.jobs
    FOR EACH ROW WHEN (NEW.updated_at IS DISTINCT FROM now())
    EXECUTE FUNCTION s1.touch();

-- One readable row per job; the answer and grade are those of sample 0.
CREATE VIEW s1.job_summary AS
SELECT j.id,
       j.state,
       j.queue,
       j.priority,
       (j.policy ->> 'max_think')::int AS budget,
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
       j.error
  FROM s1.jobs j
  LEFT JOIN s1.results r ON r.job_id = j.id AND r.sample = 0;

-- Workers and whether they are alive: not stopped, and a heartbeat within 60 s.
CREATE VIEW s1.worker_status AS
SELECT w.name,
       w.host,
       w.pid,
       w.state,
       w.model,
       w.backend,
       w.gpus,
       w.queues,
       w.jobs_in_flight,
       w.jobs_done,
       w.tokens_per_s,
       w.version,
       w.started_at,
       w.heartbeat_at,
       now() - w.heartbeat_at AS heartbeat_age,
       (w.state <> 'stopped' AND w.heartbeat_at > now() - interval '60 seconds') AS alive
  FROM s1.workers w;
