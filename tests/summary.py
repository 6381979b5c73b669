"""Counts test cases over meson test logs and prints "N passed, N failed".

A TAP test counts each of its "ok"/"not ok" lines (skips excluded); a test
that died before its plan was complete counts one more failure. Other tests
count once."""
import json
import re
import sys

TAP_LINE = re.compile(r"^(not ok|ok)\b(.*)$")


def count(log_path):
    passed = failed = 0
    try:
        lines = open(log_path, encoding="utf-8", errors="replace").read().splitlines()
    except FileNotFoundError:
        return 0, 1
    for line in lines:
        t = json.loads(line)
        result = t.get("result", "")
        out = t.get("stdout") or ""
        ok = bad = 0
        for l in out.splitlines():
            m = TAP_LINE.match(l.strip())
            if not m or "# SKIP" in m.group(2).upper():
                continue
            if m.group(1) == "ok":
                ok += 1
            else:
                bad += 1
        if ok or bad:
            passed += ok
            failed += bad
            if result not in ("OK", "SKIP", "EXPECTEDFAIL") and bad == 0:
                failed += 1
        elif result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif result != "SKIP":
            failed += 1
    return passed, failed


total_p = total_f = 0
for path in sys.argv[1:]:
    p, f = count(path)
    total_p += p
    total_f += f
print(f"{total_p} passed, {total_f} failed")
