#!/usr/bin/env bash
# Unit tests of the pure-C crypto core (src/core: persona envelopes, data-key
# wrapping, key file parser), natively and under valgrind.  SQL cannot test
# this: the core is deliberately free of PostgreSQL so it can be checked byte
# by byte, and under valgrind.  sodium_malloc is not used by the core (the
# caller provides memory).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec test/unit/run.sh test_crypto test/unit/test_crypto.c src/core/envelope.c src/core/keyfile.c
