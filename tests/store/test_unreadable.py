"""s1ctl submit refuses a problem file it may not read. Root reads any file,
so as root there is no such file to make: the test is skipped."""
import os
import sys

from ctltest import job_count, migrated_db, one_error_line, s1ctl, tempdir
from s1test import tap_main

if os.geteuid() == 0:
    # Exit 0: under protocol 'tap' meson reports a skip from the plan, and
    # takes exit 77 (s1test.skip_all) for an error.
    print("1..0 # SKIP running as root, which can read any file")
    sys.exit(0)

DB = migrated_db("unreadable")


def test_an_unreadable_file_is_refused_naming_it_and_nothing_is_written():
    path = os.path.join(tempdir("s1unread."), "secret.txt")
    with open(path, "w") as f:
        f.write("a secret problem")
    os.chmod(path, 0)
    try:
        p = s1ctl("submit", path, db=DB)
    finally:
        os.chmod(path, 0o600)
    assert p.returncode == 2
    one_error_line(p, "secret.txt", "Permission denied")
    assert job_count(DB) == 0


tap_main(globals())
