-- 0004_resume: crash-resume. While a job runs, s1d saves each sample's
-- generated tokens with the budget-forcing counts and the sampler's random
-- state, now and then; an attempt that rescues the job (its daemon died,
-- its lease was reaped, it was handed back) prefills the prompt and these
-- tokens and goes on exactly where the other stopped. Also the progress of a
-- running job, token by token, in SQL.

CREATE TABLE s1.resume (
    job_id      bigint NOT NULL REFERENCES s1.jobs (id) ON DELETE CASCADE,
    sample      int NOT NULL CHECK (sample >= 0),
    -- The attempt and worker that saved it: a save is written only while
    -- that attempt holds the job, and never over a later attempt's.
    attempt     int NOT NULL CHECK (attempt >= 1),
    worker      text NOT NULL,
    -- Tokens are only worth resuming on the model that made them.
    model       text NOT NULL,
    token_ids   int[] NOT NULL,
    token_kinds smallint[] NOT NULL,
    -- The engine's words for the rest: budget-forcing counts and RNG state.
    state       text NOT NULL,
    saved_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, sample),
    CHECK (cardinality(token_kinds) = cardinality(token_ids))
);

COMMENT ON TABLE s1.resume IS
    'Saved thinking of running samples: a rescued attempt continues from here';

-- A job that ended needs its saved tokens no more (its results hold them);
-- a job handed back to the queue keeps them for its next attempt.
CREATE FUNCTION s1.resume_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM s1.resume WHERE job_id = NEW.id;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_resume_forget AFTER UPDATE OF state ON s1.jobs
    FOR EACH ROW WHEN (NEW.state IN ('succeeded', 'failed', 'cancelled')
                       AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION s1.resume_forget();

-- s1d saves, reads and replaces them; submitters see their own jobs'.
GRANT SELECT, INSERT, UPDATE, DELETE ON s1.resume TO s1_worker;
GRANT SELECT ON s1.resume TO s1_submit, s1_read;
GRANT ALL ON s1.resume TO s1_admin;

ALTER TABLE s1.resume ENABLE ROW LEVEL SECURITY;
CREATE POLICY resume_of_own_jobs ON s1.resume FOR SELECT TO s1_submit
    USING (EXISTS (SELECT FROM s1.jobs j
                    WHERE j.id = resume.job_id AND j.submitted_by = current_user));
CREATE POLICY resume_all ON s1.resume TO s1_worker, s1_read, s1_admin
    USING (true) WITH CHECK (true);
