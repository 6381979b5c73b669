-- 0008_templates: the prompt format a job is rendered in. 's1' is the s1
-- format (the thinking turn "<|im_start|>think", ended by <|im_start|>);
-- 'think-tags' is that of QwQ-32B and its kind (thinking between <think> and
-- </think>). NULL, as every job before this migration has, means the
-- serving model's default: s1d's template setting, else what its tokenizer
-- shows (engine/include/engine.h, s1_engine_cfg.template). The names are
-- those of s1_template_name (engine/include/engine_params.h).
ALTER TABLE s1.jobs ADD COLUMN template text
    CONSTRAINT jobs_template_name CHECK (template IN ('s1', 'think-tags'));

-- A benchmark run records the template its jobs were queued with.
ALTER TABLE s1.bench_runs ADD COLUMN template text
    CONSTRAINT bench_runs_template_name CHECK (template IN ('s1', 'think-tags'));

-- Submitters choose it as they choose the policy (0003_roles lists the
-- columns they may insert; bench_runs is theirs whole).
GRANT INSERT (template) ON s1.jobs TO s1_submit;
