"""s1ctl submit refuses a problem file it may not read. Root reads any file,
so as root s1ctl runs as the unprivileged user s1test (which tests/pg.sh
creates to own the server) through runuser; without them the test is skipped,
saying which is missing."""
import os
import pwd
import shutil
import subprocess

from ctltest import binary, job_count, migrated_db, one_error_line, s1ctl, tempdir
from s1test import skip_all, tap_main

USER = "s1test"


def unprivileged_user():
    """None when not root; else the user to run s1ctl as, or a skip of the
    module naming what is missing."""
    if os.geteuid() != 0:
        return None
    why = "running as root, which can read any file"
    if not shutil.which("runuser"):
        skip_all(f"{why}, and there is no runuser to run s1ctl as another user")
    try:
        pwd.getpwnam(USER)
    except KeyError:
        skip_all(f"{why}, and there is no user {USER} to run s1ctl as (tests/pg.sh start creates it)")
    s1ctl_path = binary("s1ctl")
    if subprocess.run(["runuser", "-u", USER, "--", "test", "-x", s1ctl_path]).returncode != 0:
        skip_all(f"{why}, and {USER} cannot execute {s1ctl_path} (the build tree is not reachable by {USER})")
    host = os.environ.get("S1_TEST_PGHOST", "")
    if host.startswith("/") and subprocess.run(["runuser", "-u", USER, "--", "test", "-x", host]).returncode != 0:
        skip_all(f"{why}, and {USER} cannot reach the database socket in {host}")
    return USER


AS = unprivileged_user()
DB = migrated_db("unreadable")


def test_an_unreadable_file_is_refused_naming_it_and_nothing_is_written():
    tmp = tempdir("s1unread.")
    path = os.path.join(tmp, "secret.txt")
    with open(path, "w") as f:
        f.write("a secret problem")
    if AS:
        # The directory open to all and the file s1test's own: only the file's
        # mode keeps s1ctl out, as it does for an ordinary user.
        os.chmod(tmp, 0o755)
        os.chown(path, pwd.getpwnam(AS).pw_uid, -1)
    os.chmod(path, 0)
    try:
        p = s1ctl("submit", path, db=DB, user=AS)
    finally:
        os.chmod(path, 0o600)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    one_error_line(p, "secret.txt", "Permission denied")
    assert job_count(DB) == 0


def test_the_same_file_readable_is_queued():
    """The control: the refusal above came from the file's mode, not from
    s1ctl failing to run or to reach the database as the other user."""
    tmp = tempdir("s1unread.")
    path = os.path.join(tmp, "open.txt")
    with open(path, "w") as f:
        f.write("an open problem")
    os.chmod(tmp, 0o755)
    os.chmod(path, 0o644)
    p = s1ctl("submit", path, db=DB, user=AS)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert job_count(DB) == 1


tap_main(globals())
