-- 0007_provenance: which model files and which s1d made each result. The
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
