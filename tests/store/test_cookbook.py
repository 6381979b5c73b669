"""Every query of docs/sql-cookbook.md runs against the current schema (in a
transaction rolled back), so the cookbook cannot drift from the migrations."""
import os
import re

import psycopg2

from ctltest import SOURCE, migrated_db
from s1test import tap_main

DB = migrated_db("cookbook")


def cookbook_queries():
    text = open(os.path.join(SOURCE, "docs", "sql-cookbook.md")).read()
    return re.findall(r"```sql\n(.*?)```", text, re.S)


def test_the_cookbook_has_queries():
    assert len(cookbook_queries()) >= 20


def test_every_cookbook_query_runs_on_the_schema():
    conn = psycopg2.connect(DB)
    failed = []
    for q in cookbook_queries():
        body = "\n".join(line for line in q.splitlines() if line.strip() not in ("BEGIN;", "COMMIT;"))
        try:
            with conn.cursor() as cur:
                cur.execute(body)
        except psycopg2.Error as e:
            failed.append((body.splitlines()[0], str(e).splitlines()[0]))
        conn.rollback()
    conn.close()
    assert failed == [], failed


tap_main(globals())
