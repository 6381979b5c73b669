-- 0007_queue_speed: a queue that stays fast when results are real.
--   * Notifications go only where someone listens. Every transaction that
--     notifies takes one database-wide lock at commit and holds it through
--     its WAL flush, so a notifying claim or completion serialises every
--     other one. s1d listens on s1_jobs (work to claim) and s1_cancel;
--     `s1ctl wait` listens on s1_progress and learns that a job runs from the
--     daemon's progress notifications, so only the end of a job notifies.
--   * Lease renewals and progress can be HOT updates: no index names
--     lease_until any more, and pages keep room for the new versions.
--   * Token ids are stored as bytea, 4 bytes per id, little-endian (what the
--     daemon holds in memory, sent as hex): no array to parse per element on
--     the way in. s1.ids() and the view s1.result_ids show them as int[].

-- ---- Notifications ----------------------------------------------------------
DROP TRIGGER jobs_notify_state ON s1.jobs;
DROP FUNCTION s1.notify_state();

-- Wakes `s1ctl wait` when a job ends (payload "jobid thinking_tokens", the
-- format of the daemon's progress). A row trigger with a WHEN: a claim or a
-- lease renewal queues no event at all, and a completion one per job.
CREATE FUNCTION s1.notify_end() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('s1_progress', NEW.id || ' ' || NEW.progress_thinking);
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_end AFTER UPDATE OF state ON s1.jobs
    FOR EACH ROW WHEN (NEW.state IN ('succeeded', 'failed', 'cancelled')
                       AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION s1.notify_end();

-- ---- HOT updates ------------------------------------------------------------
-- A column in an index key or predicate changed means a new index entry in
-- every index (no HOT). The reaper only needs the running jobs, which are
-- few (what the daemons hold): it filters their leases from the heap.
DROP INDEX s1.jobs_running_lease;
CREATE INDEX jobs_running ON s1.jobs (id) WHERE state = 'running';
-- Renewals and progress rewrite a running job every few seconds; room on
-- its page lets the new version stay there. Pages written from now on.
ALTER TABLE s1.jobs SET (fillfactor = 80);

-- ---- Token ids as bytea -------------------------------------------------------
-- int[] to 4 bytes per id, little-endian. NULL elements (s1d never wrote
-- any) become -1 so that positions are kept.
CREATE FUNCTION s1.ids_bytea(ids int[]) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(decode(string_agg(substr(h, 7, 2) || substr(h, 5, 2) || substr(h, 3, 2)
                                      || substr(h, 1, 2), '' ORDER BY n), 'hex'), '\x'::bytea)
      FROM unnest(ids) WITH ORDINALITY AS u(id, n),
           LATERAL (SELECT lpad(to_hex(coalesce(u.id, -1)), 8, '0') AS h) AS x
$$;

-- The ids of a bytea column as int[] ('{}' for none). (| and << bind alike
-- in SQL: the shifts need their parentheses.)
CREATE FUNCTION s1.ids(packed bytea) RETURNS int[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(get_byte(packed, i) | (get_byte(packed, i + 1) << 8)
                              | (get_byte(packed, i + 2) << 16) | (get_byte(packed, i + 3) << 24)
                              ORDER BY i), '{}')
      FROM generate_series(0, octet_length(packed) - 4, 4) AS i
$$;


-- s1.job_summary (0005_ladders) reads every column of a result, which a
-- change of type cannot pass: the view is dropped and made again from its
-- own definition, unchanged.
DO $$
DECLARE
    summary text := pg_get_viewdef('s1.job_summary'::regclass);
BEGIN
    DROP VIEW s1.job_summary;
    ALTER TABLE s1.results
        ALTER COLUMN prompt_ids TYPE bytea USING s1.ids_bytea(prompt_ids),
        ALTER COLUMN token_ids TYPE bytea USING s1.ids_bytea(token_ids),
        ADD CONSTRAINT results_ids_are_int32
            CHECK (octet_length(prompt_ids) % 4 = 0 AND octet_length(token_ids) % 4 = 0);
    EXECUTE 'CREATE VIEW s1.job_summary WITH (security_invoker = true) AS ' || summary;
END
$$;
GRANT SELECT ON s1.job_summary TO s1_submit;

-- Traces (10-100 KB) and ids are compressed as they are stored: lz4 costs a
-- fraction of the default's time. A server built without it keeps pglz.
DO $$
BEGIN
    ALTER TABLE s1.results
        ALTER COLUMN trace SET COMPRESSION lz4,
        ALTER COLUMN prompt_ids SET COMPRESSION lz4,
        ALTER COLUMN token_ids SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this server has no lz4: results stay compressed with pglz';
END
$$;

-- Each result's ids as int[], for queries that want them as numbers.
CREATE VIEW s1.result_ids WITH (security_invoker = true) AS
SELECT r.id, r.job_id, r.attempt, r.sample, r.rung,
       s1.ids(r.prompt_ids) AS prompt_ids,
       s1.ids(r.token_ids) AS token_ids
  FROM s1.results r;

GRANT SELECT ON s1.result_ids TO s1_submit, s1_worker;
GRANT EXECUTE ON FUNCTION s1.ids(bytea), s1.ids_bytea(int[])
    TO s1_submit, s1_worker, s1_read, s1_admin;
