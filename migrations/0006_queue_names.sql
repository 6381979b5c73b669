-- 0006_queue_names: a queue name is one s1d can serve. s1d reads the queues
-- it serves as one comma-separated setting with the blanks around each name
-- trimmed, so a name with a comma, a control character or blanks at its ends
-- could be queued but never claimed. The rule is store/job.c's
-- s1_job_queue_check, which s1ctl and s1d apply before anything reaches here.
-- An inline expression rather than a function: every UPDATE of a job (claims
-- included) evaluates it, and a SQL function would be planned each time.

-- Rows from before the rule held names no daemon could serve: they become the
-- nearest servable name (commas and control characters to '_', blanks at the
-- ends dropped, at most 50 characters, empty to 'default').
UPDATE s1.jobs
   SET queue = coalesce(nullif(left(regexp_replace(btrim(queue, E' \t\n\r\f\x0b'), '[,\u0001-\u001f\u007f-\u009f]', '_', 'g'),
                                    50), ''), 'default')
 WHERE NOT (octet_length(queue) BETWEEN 1 AND 200
            AND queue = btrim(queue, E' \t\n\r\f\x0b')
            AND queue !~ '[,\u0001-\u001f\u007f-\u009f]');

ALTER TABLE s1.jobs ADD CONSTRAINT jobs_queue_name
    CHECK (octet_length(queue) BETWEEN 1 AND 200
           AND queue = btrim(queue, E' \t\n\r\f\x0b')
           AND queue !~ '[,\u0001-\u001f\u007f-\u009f]');
