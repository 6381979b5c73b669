#!/usr/bin/env bash
# The engine's boundary (DESIGN.md "Layout"): cli/, daemon/ and store/ include
# only the engine's public headers (engine/include/). The build already fails
# when they reach an internal one, since its folder is not on their include
# path; this says which file did, and catches the path being given back.
set -uo pipefail
cd "${S1_SOURCE_ROOT:?}"
echo "1..1"
# One grep over every file (a process per file and header is slow on a
# loaded machine): lines that include a header found in engine/ itself.
internal=$(cd engine && find . -path ./include -prune -o -name '*.h' -print |
    sed 's|^\./||; s|\.|\\.|g' | paste -sd '|')
mapfile -t bad < <(grep -rnE "^#include \"($internal)\"" cli daemon store --include='*.[ch]')
if [ ${#bad[@]} -eq 0 ]; then
    echo "ok 1 - cli/, daemon/ and store/ include no engine-internal header"
else
    echo "not ok 1 - engine internals reached from outside: ${bad[*]}"
    exit 1
fi
