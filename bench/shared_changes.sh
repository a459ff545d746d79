#!/usr/bin/env bash
# bench/shared_changes.sh — issue 17: "no operation proportional to the
# number of users".  On one throwaway cluster (scripts/cluster.sh, fsync on),
# two databases with the same data: one at schema 0.6.0 (served by the
# installed library, which keeps 0.6.0's behaviour until ALTER EXTENSION
# UPDATE: the changing transaction writes every affected state row) and one
# at the current version (0.8.0: the shared row only).  Each holds
# SHARED_USERS users on free (default 100,000) and an organization of
# SHARED_MEMBERS members (default 10,000) that is current for all of them.
# Measured in each:
#   - UPDATE roastr_state.plans (the free limit): time and WAL;
#   - a patch of one free user issued while that UPDATE's transaction is
#     still open (it sleeps 1 s before COMMIT): how long the patch waits;
#   - rename_organization, and deleting the organization
#     (DELETE FROM organizations on 0.6.0, delete_organization on 0.8.0):
#     time and WAL;
#   - on 0.8.0, what the users then pay: a state_full that settles the
#     pending change vs one that has nothing to settle (1,000 users each).
# Usage (as root, the extension built): bash bench/shared_changes.sh
# Not part of make test or make bench: it takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${SHARED_USERS:-100000}
M=${SHARED_MEMBERS:-10000}
target=$(sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" roastr_state.control)

export ROASTR_PORT=${ROASTR_PORT:-5498}
# shellcheck source=scripts/cluster.sh
source scripts/cluster.sh
trap cluster_stop EXIT
cluster_start "fsync = on" "synchronous_commit = on" "shared_buffers = 256MB" "max_wal_size = 4GB" \
	"checkpoint_timeout = 30min" "autovacuum = off" >/dev/null

q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

load() {   # load DB VERSION
	q -d postgres -c "CREATE DATABASE $1"
	q -d "$1" <<SQL
SET roastr_state.notify_mode = direct;
CREATE EXTENSION roastr_state VERSION '$2';
INSERT INTO roastr_state.state (user_id, email)
SELECT ('b0000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 'u' || i || '@example.com'
  FROM generate_series(1, $N) i;
INSERT INTO roastr_state.organizations (id, name, slug) VALUES ('b1000000-0000-4000-8000-000000000001', 'Big', 'big');
INSERT INTO roastr_state.organization_members (org_id, user_id, role)
SELECT 'b1000000-0000-4000-8000-000000000001', ('b0000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid,
       CASE i WHEN 1 THEN 'owner' ELSE 'member' END
  FROM generate_series(1, $M) i;
UPDATE roastr_state.state SET organization_id = 'b1000000-0000-4000-8000-000000000001'
 WHERE user_id IN (SELECT user_id FROM roastr_state.organization_members);
VACUUM ANALYZE;
CHECKPOINT;
SQL
}

# measure DB LABEL SQL: the time psql's \timing reports for one autocommit
# statement (its commit and WAL flush included), and the WAL it wrote
measure() {
	local lsn0 lsn1 ms
	lsn0=$(q -d "$1" -c "SELECT pg_current_wal_insert_lsn()")
	ms=$(psql -X -At -v ON_ERROR_STOP=1 -d "$1" -c "SET roastr_state.notify_mode = direct" \
		-c '\timing on' -c "$3" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n 1)
	lsn1=$(q -d "$1" -c "SELECT pg_current_wal_insert_lsn()")
	printf '| %s | %s | %s ms | %s |\n' "$1" "$2" "$ms" \
		"$(q -d "$1" -c "SELECT pg_size_pretty(pg_wal_lsn_diff('$lsn1', '$lsn0'))")"
}

# waiting DB LIMIT: a patch of a free user issued once the limit change's
# UPDATE has returned, while its transaction stays open for 2 s more
waiting() {
	local ms
	(PGAPPNAME=shared_bench_op q -d "$1" -c "BEGIN" -c "UPDATE roastr_state.plans SET monthly_roasts_limit = $2 WHERE plan = 'free'" \
		-c "SELECT pg_sleep(2)" -c "COMMIT" >/dev/null) &
	local bg=$!
	until [ "$(q -d "$1" -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'shared_bench_op' AND query LIKE 'SELECT pg_sleep%'")" = 1 ]; do
		sleep 0.02
	done
	ms=$(psql -X -At -v ON_ERROR_STOP=1 -d "$1" -c '\timing on' \
		-c "SELECT roastr_state.patch('b0000000-0000-4000-8000-000000099999', '{\"roasting.enabled\": false}')" |
		sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n 1)
	wait "$bg"
	printf '| %s | a patch of one free user while the change is uncommitted | %s ms | |\n' "$1" "$ms"
}

echo "loading $N users and an organization of $M, twice (0.6.0 and $target)" >&2
load rs_shared_06 0.6.0
load rs_shared_07 "$target"

echo "| database | operation | time | WAL |"
echo "|---|---|---|---|"
for db in rs_shared_06 rs_shared_07; do
	measure "$db" "UPDATE plans: the free limit 100 → 150 ($N users)" \
		"UPDATE roastr_state.plans SET monthly_roasts_limit = 150 WHERE plan = 'free'"
	waiting "$db" 200
	measure "$db" "rename_organization ($M members)" \
		"SELECT roastr_state.rename_organization('b1000000-0000-4000-8000-000000000001', 'Bigger')"
done
measure rs_shared_06 "DELETE FROM organizations ($M members)" \
	"DELETE FROM roastr_state.organizations WHERE id = 'b1000000-0000-4000-8000-000000000001'"
measure rs_shared_07 "delete_organization ($M members)" \
	"SELECT roastr_state.delete_organization('b1000000-0000-4000-8000-000000000001')"

# what the users pay on 0.8.0: 1,000 reads that settle (the limit and the
# deleted organization), then the same 1,000 reads with nothing to settle
settle() {
	measure rs_shared_07 "$1" "DO \$\$ BEGIN PERFORM roastr_state.state_full(('b0000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid)
		FROM generate_series(1, 1000) i; END \$\$"
}
settle "1,000 state_full that settle (a limit and a deleted organization each)"
settle "the same 1,000 state_full, nothing to settle"
