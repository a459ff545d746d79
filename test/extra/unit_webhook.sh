#!/usr/bin/env bash
# Unit tests of the Standard Webhooks verification core
# (src/core/webhook_core.c), without a server: builds test/unit/test_webhook.c
# with -Wall -Wextra -Werror against src/core and libsodium, runs it, then
# runs it again under valgrind (memcheck, full leak check), where any error
# fails the test.  The core is deliberately free of PostgreSQL so that every
# hostile header, id, timestamp and secret can be checked byte by byte, and
# under valgrind; the SQL tests cover the same function through
# apply_polar_webhook.
set -euo pipefail
cd "$(dirname "$0")/../.."

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

sodium_cflags=$(pkg-config --cflags libsodium 2>/dev/null || true)
sodium_libs=$(pkg-config --libs libsodium 2>/dev/null || echo -lsodium)

# shellcheck disable=SC2086   # the pkg-config output is a word list
cc -std=c11 -g -O1 -Wall -Wextra -Werror -Wmissing-prototypes \
	-Wdeclaration-after-statement -Isrc/core $sodium_cflags \
	-o "$out/test_webhook" \
	test/unit/test_webhook.c src/core/webhook_core.c \
	$sodium_libs

echo "== native"
if ! "$out/test_webhook" >"$out/native.log" 2>&1; then
	cat "$out/native.log"
	echo "unit_webhook: native run failed"
	exit 1
fi
grep -v '^ok ' "$out/native.log"

if ! command -v valgrind >/dev/null 2>&1; then
	echo "unit_webhook: valgrind not installed"
	exit 1
fi

echo "== valgrind"
if ! valgrind -q --error-exitcode=1 --leak-check=full \
		--errors-for-leak-kinds=definite,indirect,possible \
		--show-leak-kinds=definite,indirect,possible \
		"$out/test_webhook" >"$out/valgrind.log" 2>&1; then
	cat "$out/valgrind.log"
	echo "unit_webhook: valgrind run failed"
	exit 1
fi
grep -v '^ok ' "$out/valgrind.log"
echo "unit_webhook: native and valgrind runs passed, valgrind reported 0 errors"
