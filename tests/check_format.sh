#!/usr/bin/env bash
# Every C source and header follows the checked-in .clang-format. Fix with:
#   git ls-files '*.c' '*.h' | xargs clang-format -i
set -uo pipefail
cd "${S1_SOURCE_ROOT:?}"
echo "1..1"
files=$(find common engine kernels daemon cli store tests bench tools -name '*.[ch]' | sort)
bad=()
for f in $files; do
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -eq 0 ]; then
    echo "ok 1 - $(echo "$files" | wc -l) C files follow .clang-format"
else
    echo "not ok 1 - files that differ from .clang-format: ${bad[*]}"
    exit 1
fi
