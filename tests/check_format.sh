#!/usr/bin/env bash
# Every C source and header follows the checked-in .clang-format. Fix with:
#   git ls-files '*.c' '*.h' | xargs clang-format -i
set -uo pipefail
cd "${S1_SOURCE_ROOT:?}"
echo "1..1"
files=$(find common engine kernels daemon cli store tests bench tools -name '*.[ch]' | sort)
bad=()
# One clang-format for every file (a process per file is most of the time on
# a loaded machine); only when it fails, one per file to name them.
# shellcheck disable=SC2086
if ! clang-format --dry-run --Werror $files >/dev/null 2>&1; then
    for f in $files; do
        clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
    done
fi
if [ ${#bad[@]} -eq 0 ]; then
    echo "ok 1 - $(echo "$files" | wc -l) C files follow .clang-format"
else
    echo "not ok 1 - files that differ from .clang-format: ${bad[*]}"
    exit 1
fi
