#!/usr/bin/env bash
# Unit tests of the Standard Webhooks verification core
# (src/core/webhook_core.c), natively and under valgrind: every hostile
# header, id, timestamp and secret byte by byte, without a server.  The SQL
# tests cover the same function through apply_polar_webhook.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec test/unit/run.sh test_webhook test/unit/test_webhook.c src/core/webhook_core.c
