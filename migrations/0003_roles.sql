-- 0003_roles: least privilege and rows that cannot poison the queue.
--   * Group roles s1_submit, s1_worker, s1_read and s1_admin (NOLOGIN; a DBA
--     makes login users members of them, docs/operations.md).
--   * Jobs record their submitter; row-level security keeps a submitter to
--     its own jobs, and cancel/retry go through functions that check it.
--   * Bounds on every column the claim, the reaper or a daemon computes with,
--     so no row that can be inserted stops them.
-- The owner of schema s1 (whoever runs `s1ctl migrate`) keeps every right and
-- is not subject to row-level security.

-- Roles are shared by every database of the cluster: another database's
-- migration may have created them already, perhaps at the same moment.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['s1_submit', 's1_worker', 's1_read', 's1_admin'] LOOP
        CONTINUE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = r);
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role % does not exist and % may not create it: have a superuser run CREATE ROLE % NOLOGIN (see docs/operations.md), or migrate as a user with CREATEROLE',
                    r, current_user, r;
        END;
    END LOOP;
END
$$;

-- ---- Rows already there -------------------------------------------------
-- The bounds below are validated, so rows that break them are repaired
-- first. A job that a daemon could still claim or reap while it breaks them
-- fails now, with the reason; finished jobs keep their state and only have
-- their counters brought into range.
UPDATE s1.jobs
   SET state = 'failed', lease_until = NULL, finished_at = coalesce(finished_at, now()),
       error = 'failed by migration 0003_roles: ' ||
               CASE WHEN btrim(problem, E' \t\n\r\f\v') = '' THEN 'the problem is blank'
                    ELSE format('attempt %s of max_attempts %s is out of bounds',
                                attempt, max_attempts) END
 WHERE state IN ('queued', 'running')
   AND (btrim(problem, E' \t\n\r\f\v') = ''
        OR max_attempts > 1000
        OR (state = 'queued' AND attempt >= max_attempts)
        OR (state = 'running' AND attempt NOT BETWEEN 1 AND max_attempts));

UPDATE s1.jobs
   SET max_attempts = least(max_attempts, 1000),
       attempt = least(attempt, least(max_attempts, 1000))
 WHERE max_attempts > 1000 OR attempt > max_attempts;

-- A running job without a lease was never reaped: its lease expires now, so
-- the reaper requeues it (or fails it) on its next pass.
UPDATE s1.jobs SET lease_until = now(), worker = coalesce(worker, 'unknown')
 WHERE state = 'running' AND (lease_until IS NULL OR worker IS NULL);

UPDATE s1.jobs
   SET priority = least(greatest(priority, -1000000), 1000000),
       progress_thinking = greatest(progress_thinking, 0),
       progress_tokens = greatest(progress_tokens, 0),
       created_at = CASE WHEN isfinite(created_at) THEN created_at ELSE now() END,
       run_after = CASE WHEN isfinite(run_after) THEN run_after ELSE now() END
 WHERE priority NOT BETWEEN -1000000 AND 1000000 OR progress_thinking < 0
    OR progress_tokens < 0 OR NOT isfinite(created_at) OR NOT isfinite(run_after);

-- ---- Bounds ---------------------------------------------------------------
-- The claim adds 1 to attempt, the reaper compares it to max_attempts and
-- computes a backoff from it: both stay small, and a queued job always has
-- an attempt left, so its claim cannot break the CHECKs of the whole batch.
-- The claim computes the queue wait from created_at; run_after orders it.
-- A running job is held by a worker until its lease expires: without a
-- lease the reaper would never take it back.
ALTER TABLE s1.jobs
    DROP CONSTRAINT jobs_attempt_check,
    DROP CONSTRAINT jobs_max_attempts_check,
    ADD CONSTRAINT jobs_max_attempts_bounds CHECK (max_attempts BETWEEN 1 AND 1000),
    ADD CONSTRAINT jobs_attempt_bounds CHECK (attempt BETWEEN 0 AND max_attempts),
    ADD CONSTRAINT jobs_queued_has_an_attempt_left CHECK (state <> 'queued' OR attempt < max_attempts),
    ADD CONSTRAINT jobs_running_has_a_lease
        CHECK (state <> 'running' OR (attempt >= 1 AND lease_until IS NOT NULL AND worker IS NOT NULL)),
    ADD CONSTRAINT jobs_priority_bounds CHECK (priority BETWEEN -1000000 AND 1000000),
    ADD CONSTRAINT jobs_progress_bounds CHECK (progress_thinking >= 0 AND progress_tokens >= 0),
    ADD CONSTRAINT jobs_times_are_finite CHECK (isfinite(created_at) AND isfinite(run_after));

-- The engine cannot take a problem of whitespace only (the same characters
-- as C's isspace, which s1ctl uses). Finished jobs from before this
-- migration may have one: the constraint then stays NOT VALID, which still
-- checks every insert and update (a retry of such a job is refused).
ALTER TABLE s1.jobs ADD CONSTRAINT jobs_problem_not_blank
    CHECK (problem ~ '[^ \t\n\r\f\v]') NOT VALID;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM s1.jobs WHERE problem !~ '[^ \t\n\r\f\v]') THEN
        ALTER TABLE s1.jobs VALIDATE CONSTRAINT jobs_problem_not_blank;
    END IF;
END
$$;

-- ---- Who submitted a job --------------------------------------------------
-- current_user at insert. Submitters have no INSERT right on this column, so
-- the default is the only value they can give it. Jobs from before this
-- migration belong to the user who runs it (everything ran as one user).
ALTER TABLE s1.jobs ADD COLUMN submitted_by text NOT NULL DEFAULT current_user;
CREATE INDEX jobs_submitted_by ON s1.jobs (submitted_by, id);

-- ---- Rights ---------------------------------------------------------------
GRANT USAGE ON SCHEMA s1 TO s1_submit, s1_worker, s1_read, s1_admin;
-- Every command checks the schema version first.
GRANT SELECT ON s1.schema_migrations TO s1_submit, s1_worker, s1_read, s1_admin;

-- Submit: insert jobs with their inputs only (state, attempt, lease, worker,
-- progress and result columns keep their defaults), start benchmark runs,
-- read its own jobs and their results (row-level security below), the
-- suites and the workers.
GRANT SELECT ON s1.jobs, s1.results, s1.workers, s1.suites, s1.suite_problems, s1.bench_runs,
                s1.job_summary, s1.scaling_curve, s1.worker_status TO s1_submit;
GRANT INSERT (problem, queue, model, reference_answer, policy, sampling, priority, samples,
              max_attempts, bench_run_id, suite_problem_id, meta) ON s1.jobs TO s1_submit;
GRANT INSERT ON s1.bench_runs TO s1_submit;

-- Worker: what s1d does (claim, lease renewal, progress, completion, the
-- reaper, its row in s1.workers). Table-level rights, so columns added by
-- later migrations are covered.
GRANT SELECT, UPDATE ON s1.jobs TO s1_worker;
GRANT SELECT, INSERT ON s1.results TO s1_worker;
GRANT SELECT, INSERT, UPDATE ON s1.workers TO s1_worker;

-- Read: analysis, every table and view.
GRANT SELECT ON ALL TABLES IN SCHEMA s1 TO s1_read;

-- Admin: every row of every table, suites included.
GRANT ALL ON ALL TABLES IN SCHEMA s1 TO s1_admin;
GRANT ALL ON ALL SEQUENCES IN SCHEMA s1 TO s1_admin;

-- Tables and views later migrations create (as the same owner).
ALTER DEFAULT PRIVILEGES IN SCHEMA s1 GRANT SELECT ON TABLES TO s1_read;
ALTER DEFAULT PRIVILEGES IN SCHEMA s1 GRANT ALL ON TABLES TO s1_admin;

-- ---- Row-level security -----------------------------------------------------
-- A submitter sees and inserts only its own jobs; workers, readers and
-- admins see all of them (their rights above say what they may do).
ALTER TABLE s1.jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY jobs_own_read ON s1.jobs FOR SELECT TO s1_submit
    USING (submitted_by = current_user);
CREATE POLICY jobs_own_insert ON s1.jobs FOR INSERT TO s1_submit
    WITH CHECK (submitted_by = current_user AND state = 'queued' AND attempt = 0);
CREATE POLICY jobs_all ON s1.jobs TO s1_worker, s1_read, s1_admin
    USING (true) WITH CHECK (true);

ALTER TABLE s1.results ENABLE ROW LEVEL SECURITY;
CREATE POLICY results_of_own_jobs ON s1.results FOR SELECT TO s1_submit
    USING (EXISTS (SELECT FROM s1.jobs j
                    WHERE j.id = results.job_id AND j.submitted_by = current_user));
CREATE POLICY results_all ON s1.results TO s1_worker, s1_read, s1_admin
    USING (true) WITH CHECK (true);

-- Views read with the rights of whoever queries them, so they show a
-- submitter its own jobs only (a view runs as its owner otherwise).
ALTER VIEW s1.job_summary SET (security_invoker = true);
ALTER VIEW s1.scaling_curve SET (security_invoker = true);
ALTER VIEW s1.worker_status SET (security_invoker = true);

-- ---- Cancel and retry -------------------------------------------------------
-- They change state columns nobody but s1d may write, so they run as the
-- schema's owner (SECURITY DEFINER, search_path pinned, every name
-- qualified) after checking that the caller may change the job. Inside them
-- current_user is the owner; the caller is session_user.

-- Locks the job for a change by session_user. outcome NULL: go on, state
-- is the job's; 'not found'; or 'forbidden' (state NULL): session_user is
-- not the submitter, nor a member of the submitting role, of s1_admin or of
-- the schema's owner.
CREATE FUNCTION s1.lock_job_for_caller(job bigint, OUT outcome text, OUT state s1.job_state)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    who text;
BEGIN
    SELECT j.state, j.submitted_by INTO state, who FROM s1.jobs j WHERE j.id = job FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'not found';
    ELSIF NOT (EXISTS (SELECT FROM pg_catalog.pg_roles r
                        WHERE r.rolname IN (who, 's1_admin')
                          AND pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER'))
               OR pg_catalog.pg_has_role(session_user,
                                         (SELECT nspowner FROM pg_catalog.pg_namespace
                                           WHERE nspname = 's1'), 'MEMBER')) THEN
        outcome := 'forbidden';
        state := NULL;
    END IF;
END
$$;

-- A queued job never started: it ends now. A running job belongs to its
-- daemon: the flag asks it to stop (the daemon reads the row; the s1_cancel
-- notification only wakes it). outcome: 'done', 'not found', 'forbidden'
-- or 'refused' (the job's state does not allow it); state: the job's state
-- after the call (NULL unless the caller may change the job).
CREATE FUNCTION s1.cancel_job(job bigint, OUT outcome text, OUT state s1.job_state)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    SELECT l.outcome, l.state INTO outcome, state FROM s1.lock_job_for_caller(job) l;
    IF outcome IS NOT NULL THEN
        RETURN;
    ELSIF state = 'queued' THEN
        UPDATE s1.jobs j SET state = 'cancelled', finished_at = now(),
                             error = 'cancelled before it started'
         WHERE j.id = job;
        outcome := 'done';
        state := 'cancelled';
    ELSIF state = 'running' THEN
        UPDATE s1.jobs j SET cancel_requested = true WHERE j.id = job;
        PERFORM pg_notify('s1_cancel', job::text);
        outcome := 'done';
    ELSE
        outcome := 'refused';
    END IF;
END
$$;

-- Back to the queue as if new: attempts reset, no lease, no progress. The
-- results of the earlier run are removed so sample numbers stay unique. The
-- requeue trigger notifies s1_jobs. Same outcome and state as cancel_job.
CREATE FUNCTION s1.retry_job(job bigint, OUT outcome text, OUT state s1.job_state)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    SELECT l.outcome, l.state INTO outcome, state FROM s1.lock_job_for_caller(job) l;
    IF outcome IS NOT NULL THEN
        RETURN;
    ELSIF state IN ('failed', 'cancelled') THEN
        DELETE FROM s1.results r WHERE r.job_id = job;
        UPDATE s1.jobs j
           SET state = 'queued', attempt = 0, run_after = now(), worker = NULL,
               lease_until = NULL, cancel_requested = false, progress_thinking = 0,
               progress_tokens = 0, progress_at = NULL, error = NULL, started_at = NULL,
               finished_at = NULL
         WHERE j.id = job;
        outcome := 'done';
        state := 'queued';
    ELSE
        outcome := 'refused';
    END IF;
END
$$;

REVOKE ALL ON FUNCTION s1.lock_job_for_caller(bigint), s1.cancel_job(bigint), s1.retry_job(bigint)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION s1.cancel_job(bigint), s1.retry_job(bigint) TO s1_submit, s1_admin;
