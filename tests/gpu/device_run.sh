#!/usr/bin/env bash
# tests/gpu/device_run.sh — the whole GPU check of the CUDA backend in ONE
# call of at most 8 minutes on one GPU, on a machine that cannot build s1d
# (no -dev packages, no network): the binaries are built on another machine
# and travel in gpu-run/ (made by --collect), with the source tree.
#
#   tests/gpu/device_run.sh --collect [BUILD]   # build machine: BUILD (default build/) -> gpu-run/
#   tests/gpu/device_run.sh                     # GPU machine, from the repository root
#
# Steps, in order, each under `timeout` and all within S1_DEVICE_BUDGET
# seconds (default 450): a step that cannot get S1_DEVICE_MIN_STEP seconds
# (default 20) is skipped, so the summary always comes back.
#   1. libraries: every binary's shared libraries resolve (ldd)
#   2. correctness: test_cuda_link, test_kernels, test_cuda_backend,
#      test_cuda_engine, test_cuda_open
#   3. compute-sanitizer memcheck on each test that failed
#   4. bench/gpu on the 7b shape (hidden 3584, 28 layers, vocab 152064):
#      prefill, decode at batch 1, 8 and 64, the copy ceiling
#   5. variants that explain the gap: S1_CUDA_NO_GRAPHS=1, S1_CUDA_PDL=0,
#      S1_CUDA_GEMV=0
# Logs and summary.txt go to $OUT (a directory the caller collects),
# else $S1_LOG_DIR, else /tmp/s1-device; the summary is written on every exit
# and printed last. Without a GPU (a rehearsal) every GPU step fails fast and
# the benchmark model is the tiny preset. Exit status: 0 when every step that
# ran passed.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bundle=$root/gpu-run
tests=(test_cuda_link test_kernels test_cuda_backend test_cuda_engine test_cuda_open)

# ---- on the build machine: the binaries and the non-CUDA libraries they load
if [ "${1:-}" = --collect ]; then
    build=$(cd "${2:-$root/build}" && pwd) || exit 1
    rm -rf "$bundle" && mkdir -p "$bundle/bin" "$bundle/lib" || exit 1
    bins=("$build/kernels/s1cuda.so" "$build/bench/gpu")
    for t in "${tests[@]}"; do bins+=("$build/tests/gpu/$t"); done
    for b in "${bins[@]}"; do
        [ -f "$b" ] || { echo "device_run: $b is not built; run ninja -C $build" >&2; exit 1; }
        cp "$b" "$bundle/bin/"
    done
    # JSON, regex, Unicode and the like; CUDA's own and the C/C++ runtimes
    # are the GPU machine's.
    ldd "${bins[@]}" 2>/dev/null | awk '/=> \// {print $3}' | sort -u |
        grep -vE '/(libc|libm|libpthread|libdl|librt|libgcc_s|libstdc\+\+|ld-linux[^/]*)\.so' |
        grep -vE 'lib(cuda|cudart|cublas|cublasLt|nccl)\.so' |
        while read -r lib; do cp -L "$lib" "$bundle/lib/"; done
    du -sh "$bundle"
    exit 0
fi

# ---- on the GPU machine (S1_PYTHON: a python3 with numpy and regex, for
# the generated models; the device image's python3 has both)
out=${OUT:-${S1_LOG_DIR:-/tmp/s1-device}}
mkdir -p "$out"
budget=${S1_DEVICE_BUDGET:-450}
min_step=${S1_DEVICE_MIN_STEP:-20}
summary=$out/summary.txt
: >"$summary"
n_ok=0 n_fail=0 n_skip=0
failed_tests=()

note() { printf '%s\n' "$*" | tee -a "$summary"; }
finish() {
    note "device_run: $n_ok ok, $n_fail failed, $n_skip skipped in ${SECONDS}s of ${budget}s"
    echo "---- summary ($summary)"
    cat "$summary"
}
trap finish EXIT

# step NAME LIMIT CMD...: runs CMD under timeout (its limit cut to what is
# left of the budget), output to $out/NAME.log; records and returns 0 (ok),
# 1 (FAIL or TIMEOUT) or 2 (skipped: no GPU, or no time left).
step() {
    local name=$1 limit=$2
    shift 2
    local left=$((budget - SECONDS - 10))
    [ "$limit" -gt "$left" ] && limit=$left
    if [ "$limit" -lt "$min_step" ]; then
        n_skip=$((n_skip + 1))
        note "$(printf '%-28s skip (%ss left of the budget)' "$name" "$left")"
        return 2
    fi
    local t0=$SECONDS rc
    timeout -k 5 "$limit" "$@" >"$out/$name.log" 2>&1
    rc=$?
    local what=ok
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        what="TIMEOUT after ${limit}s"
    elif [ $rc -eq 77 ]; then
        what="skip (no GPU)"
    elif [ $rc -ne 0 ]; then
        what="FAIL (exit $rc)"
    fi
    case $what in
    ok) n_ok=$((n_ok + 1)) ;;
    skip*) n_skip=$((n_skip + 1)) ;;
    *) n_fail=$((n_fail + 1)) ;;
    esac
    note "$(printf '%-28s %-22s %4ss' "$name" "$what" $((SECONDS - t0)))"
    case $what in
    ok) return 0 ;;
    skip*) return 2 ;;
    *) return 1 ;;
    esac
}

[ -d "$bundle/bin" ] || {
    note "device_run: $bundle is missing: run tests/gpu/device_run.sh --collect on the build machine"
    exit 1
}
python=${S1_PYTHON:-python3}
# CUDA's libraries: the toolkit's, then those of the NVIDIA wheels (NCCL).
wheels=$("$python" - <<'EOF' 2>/dev/null
import os
try:
    import nvidia
except ImportError:
    raise SystemExit
dirs = [os.path.join(p, d, "lib") for p in nvidia.__path__ for d in sorted(os.listdir(p))]
print(":".join(d for d in dirs if os.path.isdir(d)))
EOF
)
export LD_LIBRARY_PATH="$bundle/lib:/usr/local/cuda/lib64${wheels:+:$wheels}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export S1_CUDA_MODULE=$bundle/bin/s1cuda.so S1_SOURCE_ROOT=$root S1_PYTHON=$python
export CMOCKA_MESSAGE_OUTPUT=TAP PATH="$PATH:/usr/local/cuda/bin"

gpu=yes
if ! nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader \
    >"$out/gpu.txt" 2>&1; then
    gpu=no
    echo "none (nvidia-smi: $(tail -n 1 "$out/gpu.txt"))" >"$out/gpu.txt"
fi
note "device_run on $(hostname): GPU: $(head -n 1 "$out/gpu.txt")"
[ $gpu = no ] && note "no GPU: a rehearsal, every GPU step fails fast"

# 1. libraries (ldd prints each one missing as "... => not found")
step libraries 30 sh -c '! ldd "$0"/bin/* 2>&1 | grep "not found"' "$bundle" ||
    sed 's/^/    /' "$out/libraries.log" | tee -a "$summary"

# 2. correctness
limits=(test_cuda_link:30 test_kernels:90 test_cuda_backend:120 test_cuda_engine:120 test_cuda_open:30)
for tl in "${limits[@]}"; do
    t=${tl%%:*}
    step "$t" "${tl##*:}" "$bundle/bin/$t"
    [ $? -eq 1 ] && failed_tests+=("$t")
    grep -h '^not ok' "$out/$t.log" 2>/dev/null | head -n 5 | sed 's/^/    /' | tee -a "$summary"
done

# 3. memcheck on what failed
for t in "${failed_tests[@]}"; do
    step "memcheck_$t" 120 compute-sanitizer --tool memcheck --error-exitcode 3 "$bundle/bin/$t"
    grep -m 5 -E '^========= (Invalid|Program hit|ERROR SUMMARY)' "$out/memcheck_$t.log" |
        sed 's/^/    /' | tee -a "$summary"
done

# 4. bench/gpu on the 7b shape (tiny in a rehearsal), then 5. the variants
if [ $gpu = yes ]; then
    preset=7b model=${S1_BENCH_MODEL:-/tmp/s1-bench-7b}
else
    preset=tiny model=${S1_BENCH_MODEL:-/tmp/s1-bench-tiny}
fi
have_model=yes
if [ ! -f "$model/config.json" ]; then
    step "gen_model_$preset" 150 "$python" "$root/tools/gen_model.py" --out "$model" --preset $preset ||
        have_model=no
fi
bench() { # name, then environment assignments
    local name=$1
    shift
    step "$name" 100 env "$@" "$bundle/bin/gpu" "$model" --steps "${S1_BENCH_STEPS:-32}"
    local rc=$?
    if [ $rc -eq 0 ]; then
        grep -E '^(NVIDIA|prefill|device-to-device|batch|[0-9]+ )' "$out/$name.log"
    elif [ $rc -eq 1 ]; then
        tail -n 1 "$out/$name.log"
    fi | sed 's/^/    /' | tee -a "$summary"
}
if [ $have_model = yes ]; then
    bench bench_gpu
    bench bench_no_graphs S1_CUDA_NO_GRAPHS=1
    bench bench_no_pdl S1_CUDA_PDL=0
    bench bench_cublaslt S1_CUDA_GEMV=0
fi
[ $n_fail -eq 0 ]
