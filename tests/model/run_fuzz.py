"""Runs a libFuzzer target briefly from its seed corpus and reports in TAP.
New inputs go to a temporary directory, never into the source tree.

usage: run_fuzz.py FUZZER CORPUS_DIR SECONDS"""
import subprocess
import sys
import tempfile

fuzzer, corpus, seconds = sys.argv[1], sys.argv[2], sys.argv[3]
print("1..1", flush=True)
with tempfile.TemporaryDirectory(prefix="s1fuzz.") as new:
    r = subprocess.run([fuzzer, new, corpus, f"-max_total_time={seconds}", "-rss_limit_mb=2048",
                        "-print_final_stats=1"], capture_output=True, text=True)
for line in r.stderr.splitlines()[-40:]:
    print(f"# {line}")
verdict = "ok" if r.returncode == 0 else "not ok"
print(f"{verdict} 1 - {fuzzer.rsplit('/', 1)[-1]} survives {seconds} s of fuzzing from its corpus")
sys.exit(0 if r.returncode == 0 else 1)
