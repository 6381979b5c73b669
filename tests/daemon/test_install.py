#!/usr/bin/python3
"""`meson install` into a DESTDIR: binaries, units, sysusers/tmpfiles, example
settings and man pages land where the units and docs/operations.md say, the
units pass `systemd-analyze verify` (their programs and man pages found in the
install), and s1d's units stay hardened (`systemd-analyze security`)."""
import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from s1test import BUILD, SOURCE, skip_all, tap_main  # noqa: E402

ANALYZE = shutil.which("systemd-analyze")
if not ANALYZE:
    skip_all("systemd-analyze not found")


def install():
    """Installs the build into a fresh DESTDIR; returns (destdir, options)."""
    dest = tempfile.mkdtemp(prefix="s1install.")
    atexit.register(shutil.rmtree, dest, True)
    subprocess.run(["meson", "install", "-C", BUILD, "--destdir", dest, "--no-rebuild", "--quiet"],
                   check=True, capture_output=True)
    opts = json.loads(subprocess.run(["meson", "introspect", BUILD, "--buildoptions"], check=True,
                                     capture_output=True, text=True).stdout)
    return dest, {o["name"]: o["value"] for o in opts if o["section"] in ("directory",)}


DEST, DIRS = install()
PREFIX = DIRS["prefix"]
UNIT_DIR = os.path.join(PREFIX, "lib", "systemd", "system")


def staged(path):
    """Where an absolute installed path lies in DESTDIR."""
    return DEST + path


def unit_text(name):
    with open(staged(os.path.join(UNIT_DIR, name))) as f:
        return f.read()


def test_every_file_lands_under_the_prefix_where_systemd_and_man_look():
    expect = [os.path.join(PREFIX, DIRS["bindir"], "s1ctl"), os.path.join(PREFIX, DIRS["sbindir"], "s1d"),
              os.path.join(PREFIX, "lib", "sysusers.d", "s1d.conf"),
              os.path.join(PREFIX, "lib", "tmpfiles.d", "s1d.conf"),
              os.path.join(PREFIX, DIRS["mandir"], "man1", "s1ctl.1"),
              os.path.join(PREFIX, DIRS["mandir"], "man8", "s1d.8")]
    expect += [os.path.join(UNIT_DIR, u) for u in ("s1d.service", "s1d@.service", "s1-bench.service",
                                                   "s1-bench.timer")]
    expect += [os.path.join(PREFIX, DIRS["datadir"], "doc", "s1d", f)
               for f in ("s1d.conf.example", "s1-bench.env.example", "operations.md")]
    missing = [p for p in expect if not os.path.isfile(staged(p))]
    assert missing == [], missing
    for exe in expect[:2]:
        assert os.access(staged(exe), os.X_OK), exe


def test_the_units_name_the_installed_programs_and_documents():
    for unit in ("s1d.service", "s1d@.service", "s1-bench.service"):
        text = unit_text(unit)
        programs = re.findall(r"^ExecStart=(\S+)", text, re.M)
        docs = re.findall(r"file:(\S+)", text)
        assert programs and docs, unit
        for path in programs + docs:
            assert os.path.isfile(staged(path)), (unit, path)
        assert "@" not in re.sub(r"s1d@|%i|@system-service", "", text), (unit, "an unreplaced @VAR@")


def test_every_path_the_operations_guide_names_under_the_prefix_is_installed():
    with open(os.path.join(SOURCE, "docs", "operations.md")) as f:
        guide = f.read()
    named = set(re.findall(r"(/usr/local/[\w./@-]+\w)", guide))
    assert named, "the guide names no installed path"
    if PREFIX == "/usr/local":
        missing = [p for p in named if not os.path.exists(staged(p))]
        assert missing == [], missing


def verify(unit, instance=None):
    """systemd-analyze verify on a copy of the unit whose paths point into
    DESTDIR, with man pages looked up in the installed ones."""
    work = tempfile.mkdtemp(dir=DEST)
    with open(os.path.join(work, unit), "w") as f:
        f.write(unit_text(unit).replace(PREFIX + "/", staged(PREFIX) + "/"))
    shutil.copy(staged(os.path.join(UNIT_DIR, "s1-bench.timer")), work)
    env = dict(os.environ, MANPATH=staged(os.path.join(PREFIX, DIRS["mandir"])))
    args = [os.path.join(work, instance or unit)]
    if unit == "s1-bench.service":
        args.append(os.path.join(work, "s1-bench.timer"))
    return subprocess.run([ANALYZE, "verify", "--man=yes", *args], capture_output=True, text=True, env=env)


def test_the_units_pass_systemd_analyze_verify_with_their_man_pages():
    for unit, instance in (("s1d.service", None), ("s1d@.service", "s1d@gpu01.service"),
                           ("s1-bench.service", None)):
        p = verify(unit, instance)
        ours = [line for line in p.stderr.splitlines() if "s1" in line]
        assert p.returncode == 0 and ours == [], (unit, p.stderr)


def exposure(path):
    out = subprocess.run([ANALYZE, "security", "--offline=yes", path], capture_output=True, text=True).stdout
    return float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", out).group(1))


def test_the_daemon_units_are_hardened_and_still_reach_the_gpus():
    work = tempfile.mkdtemp(dir=DEST)
    for unit in ("s1d.service", "s1d@.service"):
        shutil.copy(staged(os.path.join(UNIT_DIR, unit)), work)
    for name in ("s1d.service", "s1d@gpu01.service"):
        assert exposure(os.path.join(work, name)) <= 2.0, name
    for unit in ("s1d.service", "s1d@.service"):
        text = unit_text(unit)
        assert "DeviceAllow=/dev/nvidiactl rw" in text and "DeviceAllow=char-nvidia-frontend rw" in text
        assert re.search(r"^ProtectHome=read-only$", text, re.M), "models under home directories are readable"


def test_each_instance_has_its_own_settings_gpus_and_worker_name():
    text = unit_text("s1d@.service")
    start = re.search(r"^ExecStart=(.*)$", text, re.M).group(1)
    assert "--config /etc/s1d/%i.conf" in start and "--worker-name %H-%i" in start
    assert re.search(r"^EnvironmentFile=-/etc/s1d/%i.env$", text, re.M)


tap_main(globals())
