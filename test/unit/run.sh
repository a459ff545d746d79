#!/usr/bin/env bash
# Build a unit test of the pure-C cores (src/core: no PostgreSQL) with
# -Wall -Wextra -Werror against libsodium, run it, then run it again under
# valgrind (memcheck, full leak check), where any error or leak fails.
#
#   test/unit/run.sh NAME SOURCE...      (from the repository root)
#
# valgrind and libsodium: libsodium picks its SIMD code by CPUID at
# sodium_init(); valgrind emulates the CPU features it reports, so the same
# code paths run and no suppressions are needed.
set -euo pipefail
name=$1
shift
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

sodium_cflags=$(pkg-config --cflags libsodium 2>/dev/null || true)
sodium_libs=$(pkg-config --libs libsodium 2>/dev/null || echo -lsodium)

# shellcheck disable=SC2086   # the pkg-config output is a word list
cc -std=c11 -g -O1 -Wall -Wextra -Werror -Wmissing-prototypes \
	-Wdeclaration-after-statement -Isrc/core $sodium_cflags \
	-o "$out/$name" "$@" $sodium_libs

echo "== native"
if ! "$out/$name" >"$out/native.log" 2>&1; then
	cat "$out/native.log"
	echo "$name: native run failed"
	exit 1
fi
grep -v '^ok ' "$out/native.log"

if ! command -v valgrind >/dev/null 2>&1; then
	echo "$name: valgrind not installed"
	exit 1
fi
echo "== valgrind"
if ! valgrind -q --error-exitcode=1 --leak-check=full \
		--errors-for-leak-kinds=definite,indirect,possible \
		--show-leak-kinds=definite,indirect,possible \
		"$out/$name" >"$out/valgrind.log" 2>&1; then
	cat "$out/valgrind.log"
	echo "$name: valgrind run failed"
	exit 1
fi
grep -v '^ok ' "$out/valgrind.log"
echo "$name: native and valgrind runs passed, valgrind reported 0 errors"
