#!/usr/bin/env bash
# Unit tests of the pure-C crypto core (src/core: persona envelopes, data-key
# wrapping, key file parser), without a server: builds test/unit/test_crypto.c
# with -Wall -Wextra -Werror against src/core and libsodium, runs it, then
# runs it again under valgrind (memcheck, full leak check), where any error
# fails the test.  SQL cannot test this: the core is deliberately free of
# PostgreSQL so it can be checked byte by byte, and under valgrind.
#
# valgrind and libsodium: libsodium picks its SIMD code by CPUID at
# sodium_init(); valgrind emulates the CPU features it reports (SSE2..AVX2
# on x86-64), so the same code paths run and no suppressions are needed.
# sodium_malloc is not used by the core (the caller provides memory).
set -euo pipefail
cd "$(dirname "$0")/../.."

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

sodium_cflags=$(pkg-config --cflags libsodium 2>/dev/null || true)
sodium_libs=$(pkg-config --libs libsodium 2>/dev/null || echo -lsodium)

# shellcheck disable=SC2086   # the pkg-config output is a word list
cc -std=c11 -g -O1 -Wall -Wextra -Werror -Wmissing-prototypes \
	-Wdeclaration-after-statement -Isrc/core $sodium_cflags \
	-o "$out/test_crypto" \
	test/unit/test_crypto.c src/core/envelope.c src/core/keyfile.c \
	$sodium_libs

echo "== native"
"$out/test_crypto" >"$out/native.log" 2>&1 || {
	cat "$out/native.log"
	echo "unit_crypto: native run failed"
	exit 1
}
grep -v '^ok ' "$out/native.log"

if ! command -v valgrind >/dev/null 2>&1; then
	echo "unit_crypto: valgrind not installed"
	exit 1
fi

echo "== valgrind"
if ! valgrind -q --error-exitcode=1 --leak-check=full \
		--errors-for-leak-kinds=definite,indirect,possible \
		--show-leak-kinds=definite,indirect,possible \
		"$out/test_crypto" >"$out/valgrind.log" 2>&1; then
	cat "$out/valgrind.log"
	echo "unit_crypto: valgrind run failed"
	exit 1
fi
grep -v '^ok ' "$out/valgrind.log"
echo "unit_crypto: native and valgrind runs passed, valgrind reported 0 errors"
