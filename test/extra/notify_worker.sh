#!/usr/bin/env bash
# Proves that, with the library preloaded, committed changes reach a
# LISTENing client through the background notifier (no writer NOTIFYs):
# commits are announced once, coalesced per user and transaction; rolled
# back work and rolled back savepoints are not; personal values (the name)
# are named in "fields" but never sent in "data".  SQL cannot test this: psql prints the sender's PID, and the
# notifier's delivery is asynchronous, so a probe client waits for it.
set -euo pipefail
cd "$(dirname "$0")/../.."

probe=test/notify_probe
cc -O2 -Wall -Wextra -o "$probe" test/notify_probe.c \
	-I"$(pg_config --includedir)" -L"$(pg_config --libdir)" -lpq

db=rs_notify_worker
u1=b1111111-1111-4111-8111-111111111111
u2=b2222222-2222-4222-8222-222222222222
out=$(mktemp)
trap 'rm -f "$out"' EXIT

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<SQL
CREATE EXTENSION roastr_state;
SELECT roastr_state.ensure_user('$u1', 'one@example.com') IS NOT NULL;
SELECT roastr_state.ensure_user('$u2', 'two@example.com') IS NOT NULL;
SQL

# 4 announcements on user:$u1, 5 on roastr_state, 1 on roastr_state_embeddings
PGDATABASE=$db "$probe" -n 10 -t 15000 "user:$u1" roastr_state roastr_state_embeddings >"$out" &
probe_pid=$!
for _ in $(seq 100); do grep -q '^ready$' "$out" && break; sleep 0.05; done

psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<SQL
SET roastr_state.notify_mode = worker;
-- 1: committed
SELECT roastr_state.patch('$u1', '{"roasting.enabled": false}');
-- rolled back: never announced
BEGIN;
SELECT roastr_state.patch('$u1', '{"roasting.roast_level": 5}');
ROLLBACK;
-- 2: two changes in one transaction, one of them in a rolled back savepoint
BEGIN;
SELECT roastr_state.patch('$u1', '{"roasting.roast_level": 2}');
SAVEPOINT s1;
SELECT roastr_state.patch('$u1', '{"roasting.shield_level": "estricto"}');
ROLLBACK TO SAVEPOINT s1;
SELECT roastr_state.patch('$u1', '{"auth.name": "One"}');
COMMIT;
-- 3: another user (only the shared channel listens for it)
SELECT roastr_state.patch('$u2', '{"roasting.enabled": false}');
-- 4: a payload over the limit becomes a resync hint
SET roastr_state.notify_max_payload = 100;
SELECT roastr_state.patch('$u1', '{"roasting.enabled": true, "roasting.roast_level": 4, "roasting.shield_level": "estricto"}');
RESET roastr_state.notify_max_payload;
-- 5: persona text: named, never sent; the embedding worker's channel too
SELECT roastr_state.patch('$u1', '{"persona.identity": "SECRET-PERSONA-TEXT"}');
SQL

status=0
wait "$probe_pid" || status=$?

# every payload carries the history line of its version, read here from the
# control file rather than from the extension
h=$(psql -X -At -d "$db" -c "SELECT s.system_identifier || '.' || c.timeline_id FROM pg_control_system() s, pg_control_checkpoint() c")

expected="ready
user:$u1 {\"type\":\"roasting_toggle\",\"version\":2,\"history\":\"$h\",\"fields\":[\"roasting.enabled\"],\"data\":{\"roasting\":{\"enabled\":false}}}
roastr_state {\"user_id\":\"$u1\",\"type\":\"roasting_toggle\",\"version\":2,\"history\":\"$h\",\"fields\":[\"roasting.enabled\"],\"data\":{\"roasting\":{\"enabled\":false}}}
user:$u1 {\"type\":[\"auth_update\",\"roasting_update\"],\"version\":4,\"history\":\"$h\",\"fields\":[\"auth.name\",\"roasting.roast_level\"],\"data\":{\"roasting\":{\"roast_level\":2}}}
roastr_state {\"user_id\":\"$u1\",\"type\":[\"auth_update\",\"roasting_update\"],\"version\":4,\"history\":\"$h\",\"fields\":[\"auth.name\",\"roasting.roast_level\"],\"data\":{\"roasting\":{\"roast_level\":2}}}
roastr_state {\"user_id\":\"$u2\",\"type\":\"roasting_toggle\",\"version\":2,\"history\":\"$h\",\"fields\":[\"roasting.enabled\"],\"data\":{\"roasting\":{\"enabled\":false}}}
user:$u1 {\"type\":\"resync\",\"version\":5,\"history\":\"$h\"}
roastr_state {\"user_id\":\"$u1\",\"type\":\"resync\",\"version\":5,\"history\":\"$h\"}
user:$u1 {\"type\":\"persona_update\",\"version\":6,\"history\":\"$h\",\"fields\":[\"persona.identity\"],\"data\":{}}
roastr_state {\"user_id\":\"$u1\",\"type\":\"persona_update\",\"version\":6,\"history\":\"$h\",\"fields\":[\"persona.identity\"],\"data\":{}}
roastr_state_embeddings {\"user_id\":\"$u1\",\"version\":6,\"history\":\"$h\",\"fields\":[\"persona.identity\"]}"

fail=0
if [ "$status" -ne 0 ]; then
	echo "probe exited with status $status (2 = timed out)"; fail=1
fi
if [ "$(cat "$out")" != "$expected" ]; then
	echo "unexpected notifications:"; diff <(echo "$expected") "$out" || true; fail=1
fi

# nothing more arrives (the rolled back work stays silent)
PGDATABASE=$db "$probe" -n 1 -t 1000 "user:$u1" >"$out" && { echo "an extra notification arrived: $(cat "$out")"; fail=1; }

# the worker sent them: no writer fell back to NOTIFY
stats=$(psql -X -At -d "$db" -c "SELECT roastr_state.notify_stats()")
fallbacks=$(psql -X -At -d "$db" -c "SELECT ('$stats'::jsonb->>'direct_fallbacks')")
if [ "$fallbacks" != "0" ]; then
	echo "writers fell back to direct NOTIFY: $stats"; fail=1
fi

# the notifier leaves when idle, so the database can be dropped
if ! psql -X -q -d postgres -c "DROP DATABASE $db" 2>&1; then
	echo "DROP DATABASE failed: the notifier held the database"; fail=1
fi

if [ "$fail" -eq 0 ]; then echo "notify_worker: ok (10 notifications, $stats)"; fi
exit "$fail"
