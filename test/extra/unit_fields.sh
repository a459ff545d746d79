#!/usr/bin/env bash
# Unit tests of the pure-C field core (src/core/fields_core.c: the registry,
# patch key rules, UTF-8/length/enumeration/range/UUID checks of values),
# natively and under valgrind.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec test/unit/run.sh test_fields test/unit/test_fields.c src/core/fields_core.c
