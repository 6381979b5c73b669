-- 0010_resume_forks: crash-resume for jobs of several samples and for
-- ladders. A job's save is every sequence it has: one per sample and per
-- ladder branch, running or already finished (a finished branch is saved
-- with its result's tokens and given again on resume: the fork point that
-- made it cannot be recomputed). A sequence is named by its sample and the
-- first ladder rung it stands for; the rungs it stands for and how it
-- stopped are in its state text, and stop_reason shows the latter in SQL.

ALTER TABLE s1.resume
    ADD COLUMN rung int NOT NULL DEFAULT 0 CHECK (rung BETWEEN 0 AND 31),
    ADD COLUMN stop_reason text GENERATED ALWAYS AS (substring(state FROM ' stop=([a-z_]+)')) STORED;

ALTER TABLE s1.resume DROP CONSTRAINT resume_pkey;
ALTER TABLE s1.resume ADD PRIMARY KEY (job_id, sample, rung);

COMMENT ON COLUMN s1.resume.rung IS
    'The first ladder rung this saved sequence stands for (0 without a ladder)';
COMMENT ON COLUMN s1.resume.stop_reason IS
    'NULL while the sequence runs; how it ended once its branch finished';
