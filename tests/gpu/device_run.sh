#!/usr/bin/env bash
# tests/gpu/device_run.sh — runs the GPU tests (and, with --bench, bench/gpu)
# from a build directory made on another machine, on a GPU machine that
# cannot build s1d itself (no PostgreSQL/libuv/... -dev packages, no network):
# the build directory is copied there, with the few shared libraries the test binaries need beyond CUDA (BUILD/devlibs,
# filled by --collect on the build machine).
#
#   tests/gpu/device_run.sh --collect [BUILD]   # on the build machine
#   tests/gpu/device_run.sh [--bench] [BUILD]   # on the GPU machine
#
# Logs go to $S1_LOG_DIR (default /tmp) and stdout; the exit status is that of the tests.
set -uo pipefail

mode=test
case "${1:-}" in
--collect) mode=collect; shift ;;
--bench) mode=bench; shift ;;
esac
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-cuda}

if [ "$mode" = collect ]; then
    # The non-CUDA libraries the GPU binaries load (JSON, regex, Unicode).
    mkdir -p "$build/devlibs"
    ldd "$build"/tests/gpu/test_* "$build"/bench/gpu 2>/dev/null | awk '/=>/ {print $3}' | sort -u |
        grep -vE '/(libc|libm|libpthread|libdl|librt|libgcc_s|libstdc\+\+|ld-linux[^/]*)\.so' |
        grep -v cuda | while read -r lib; do cp -L "$lib" "$build/devlibs/"; done
    ls "$build/devlibs"
    exit 0
fi

# CUDA's own libraries: the toolkit's, and NCCL from the toolkit or from the
# nvidia-nccl Python wheel.
python=${S1_PYTHON:-python3}
nccl=$("$python" -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null || true)
export LD_LIBRARY_PATH="$build/devlibs:/usr/local/cuda/lib64:${nccl}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export S1_SOURCE_ROOT=$root S1_PYTHON=$python CMOCKA_MESSAGE_OUTPUT=TAP
out=${S1_LOG_DIR:-/tmp}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"

if [ "$mode" = bench ]; then
    model=${S1_BENCH_MODEL:-/tmp/s1-bench-7b}
    [ -f "$model/config.json" ] || "$python" "$root/tools/gen_model.py" --out "$model" --preset 7b
    "$build/bench/gpu" "$model" 2>&1 | tee "$out/bench_gpu.txt"
    exit "${PIPESTATUS[0]}"
fi

rc=0
for t in test_cuda_link test_kernels test_cuda_backend test_cuda_engine; do
    echo "== $t"
    timeout 600 "$build/tests/gpu/$t" >"$out/$t.txt" 2>&1
    r=$?
    cat "$out/$t.txt"
    echo "== $t: exit $r"
    [ $r -eq 0 ] || [ $r -eq 77 ] || rc=1
done
exit $rc
