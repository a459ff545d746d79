#!/usr/bin/env bash
# A database with the extension and its data, made on the older major (15),
# moved to this run's major (17) both ways an operator does it:
#   (a) pg_upgrade (--copy), old and new binaries side by side;
#   (b) pg_dumpall --globals-only and pg_dump -Fc with the new major's tools,
#       pg_restore into a fresh cluster of the new major.
# After each: every table of the extension is row for row what it was
# (states, versions, the per-field change log, mutations, consumptions,
# webhook history, Polar ids, organizations, members, user keys and persona
# ciphertext byte for byte), the extension version is the same, the persona
# decrypts to the text written (same master key file), state_full and every
# state_sync answer as before, a device's token of the old cluster's history
# gets one full resync flagged reset (a new cluster is a new history) while
# a bare cursor stays valid, and writing goes on: the next version, a retried
# mutation's recorded outcome, a persona write with the restored data key,
# consumption, a webhook redelivery that is recognised as already applied.
#
# It needs the older major's binaries with the extension built for them:
# scripts/pgroot.sh stages them into the root for `make test PG=17` on a
# Debian 12 host (ROASTR_OLD_PG, ROASTR_OLD_MAJOR).  Without them (the host
# run, which is the older major itself) it exits 77: skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ -z "${ROASTR_OLD_PG:-}" || -z "${ROASTR_OLD_MAJOR:-}" ]]; then
	echo "major_upgrade: skipped: no older major staged (it runs in 'make test PG=17' on a Debian 12 host)"
	exit 77
fi
old=$ROASTR_OLD_MAJOR
oldbin=$ROASTR_OLD_PG/usr/lib/postgresql/$old/bin
newbin=$(pg_config --bindir)
new=$("$newbin/postgres" --version | sed -E 's/.* ([0-9]+)[.].*/\1/')
oldlib=$ROASTR_OLD_PG/hostlib
[[ -x "$oldbin/postgres" ]] || { echo "major_upgrade: $oldbin/postgres is missing"; exit 1; }
[[ "$old" -lt "$new" ]] || { echo "major_upgrade: old major $old is not older than $new"; exit 1; }

owner=postgres
[[ $(id -u) -eq 0 ]] || owner=$(id -un)
dir=$(mktemp -d /tmp/roastr_major.XXXXXX)
chmod 755 "$dir"
[[ $(id -u) -ne 0 ]] || chown "$owner": "$dir"
port_old=5611
port_a=5612
port_b=5613
db=rs_major

# as the server's OS user, in $dir; old binaries find the host's libraries
as_owner() {
	if [[ $(id -u) -eq 0 ]]; then
		(cd "$dir" && runuser -u "$owner" -- env LD_LIBRARY_PATH="$oldlib" "$@")
	else
		(cd "$dir" && env LD_LIBRARY_PATH="$oldlib" "$@")
	fi
}
stop_all() {
	local d
	for d in "$dir"/old "$dir"/a "$dir"/b; do
		if [[ -f "$d/postmaster.pid" ]]; then
			as_owner "$oldbin/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1 ||
				as_owner "$newbin/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1 || true
		fi
	done
}
keep=""
cleanup() {
	stop_all
	if [[ -z "$keep" ]]; then rm -rf "$dir"; fi
}
trap cleanup EXIT

# one master key file and one webhook secret for every cluster: what an
# operator carries over with the data
(umask 077
	printf '# major_upgrade test key\n1 %s\n' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" >"$dir/master.keys"
	printf 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n' >"$dir/webhook.secret")
[[ $(id -u) -ne 0 ]] || chown "$owner": "$dir/master.keys" "$dir/webhook.secret"

initdb_at() { # BINDIR DATADIR PORT
	as_owner "$1/initdb" -D "$2" --auth=trust --username=postgres --encoding=UTF8 --locale=C.UTF-8 -N >"$2.initdb.log" 2>&1 ||
		{ cat "$2.initdb.log"; return 1; }
	cat >>"$2/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
port = $3
shared_preload_libraries = 'roastr_state'
fsync = off
jit = off
roastr_state.master_key_file = '$dir/master.keys'
roastr_state.webhook_secret_file = '$dir/webhook.secret'
CONF
}
start_at() { # BINDIR DATADIR
	as_owner "$1/pg_ctl" -D "$2" -w -l "$2.log" start >/dev/null ||
		{ tail -n 30 "$2.log"; return 1; }
}
q() { # PORT SQL... (one value per line)
	local port=$1
	shift
	psql -X -At -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d "$db" "$@"
}


u1=e1111111-1111-4111-8111-111111111111
u2=e2222222-2222-4222-8222-222222222222
u3=e3333333-3333-4333-8333-333333333333
u4=e4444444-4444-4444-8444-444444444444
mid=e9999999-9999-4999-8999-999999999999
identity="Upgraded from $old, ñandú ✓"
intolerance="puns before coffee"

# ------------------------------------------------------------ the old major
initdb_at "$oldbin" "$dir/old" "$port_old"
start_at "$oldbin" "$dir/old"
# Supabase's roles, as the test cluster has them (the extension's grants name them)
psql -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port_old" -U postgres -d postgres \
	-f test/helpers/supabase_roles.psql -c "CREATE DATABASE $db" >/dev/null
q "$port_old" -q >/dev/null <<SQL
CREATE EXTENSION roastr_state;
CREATE EXTENSION pgcrypto;
SET roastr_state.notify_mode = direct;
SELECT roastr_state.ensure_user('$u1', 'one@example.com', 'One');
SELECT roastr_state.ensure_user('$u2', 'two@example.com');
SELECT roastr_state.ensure_user('$u3', 'three@example.com');
SELECT roastr_state.ensure_user('$u4', 'four@example.com');
SELECT roastr_state.patch('$u1', '{"roasting.enabled": false}');
SELECT roastr_state.patch('$u1', '{"roasting.roast_level": 5, "roasting.shield_level": "estricto"}', 2, '$mid');
SELECT roastr_state.patch('$u1', '{"persona.identity": "$identity", "persona.intolerance": "$intolerance"}');
SELECT roastr_state.patch('$u2', '{"persona.identity": "on the house"}');
UPDATE roastr_state.plans SET monthly_roasts_limit = 1500 WHERE plan = 'pro';
SELECT roastr_state.consume_roasts('$u1', 3, 'order-1');
SELECT roastr_state.mark_embeddings('$u2', 'model-x', '2026-01-02T03:04:05Z');
SELECT roastr_state.set_product_plan('prod_pro', 'pro');
CREATE TEMP TABLE ev(id text, body text);
INSERT INTO ev VALUES
 ('wh_1', jsonb_build_object('type', 'subscription.created', 'timestamp', '2026-01-01T00:00:01Z', 'data',
   jsonb_build_object('id', 'sub_3', 'status', 'active', 'modified_at', '2026-01-01T00:00:01Z',
     'created_at', '2026-01-01T00:00:00Z',
     'current_period_start', to_char(now() - interval '1 day', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
     'current_period_end', to_char(now() + interval '29 days', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
     'cancel_at_period_end', false, 'product_id', 'prod_pro', 'customer_id', 'cus_3',
     'customer', jsonb_build_object('id', 'cus_3', 'external_id', '$u3'), 'metadata', '{}'::jsonb))::text),
 ('wh_2', jsonb_build_object('type', 'subscription.canceled', 'timestamp', '2026-01-02T00:00:01Z', 'data',
   jsonb_build_object('id', 'sub_3', 'status', 'active', 'modified_at', '2026-01-02T00:00:01Z',
     'created_at', '2026-01-01T00:00:00Z',
     'current_period_start', to_char(now() - interval '1 day', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
     'current_period_end', to_char(now() + interval '29 days', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
     'cancel_at_period_end', true, 'product_id', 'prod_pro', 'customer_id', 'cus_3',
     'customer', jsonb_build_object('id', 'cus_3', 'external_id', '$u3'), 'metadata', '{}'::jsonb))::text);
CREATE TABLE public.delivered AS SELECT id, body, (extract(epoch FROM now())::bigint)::text AS ts FROM ev;
SELECT roastr_state.apply_polar_webhook(id, ts,
	'v1,' || encode(hmac(convert_to(id || '.' || ts || '.' || body, 'UTF8'),
		decode('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64'), 'sha256'), 'base64'), body)
FROM public.delivered ORDER BY id;
CREATE TABLE public.org AS SELECT roastr_state.create_organization('$u1', 'Acme', 'acme') AS id;
SELECT roastr_state.add_member((SELECT id FROM public.org), '$u2', 'member');
SELECT roastr_state.rename_organization((SELECT id FROM public.org), 'Acme Inc');
SELECT roastr_state.delete_user('$u4');
SQL

# Every table of the extension, row by row, as text (bytea in hex), in a
# fixed order; the extension's version; and the API's answers per user.
snapshot() { # PORT
	local port=$1 t
	q "$port" -c "SELECT extversion FROM pg_extension WHERE extname = 'roastr_state'"
	for t in $(q "$port" -c "SELECT c.relname FROM pg_class c JOIN pg_depend d ON d.objid = c.oid
			JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'roastr_state'
			WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_extension'::regclass
			AND d.deptype = 'e' AND c.relkind = 'r' ORDER BY 1"); do
		echo "== $t"
		q "$port" -c "SELECT t::text FROM roastr_state.$t t ORDER BY 1"
	done
	echo "== api"
	q "$port" -c "SET TimeZone = 'UTC'" -c "SELECT user_id, (roastr_state.state_full(user_id) #- '{_meta,history}' #- '{_meta,lastSyncedAt}')::text,
			(roastr_state.state_sync(user_id, 0) - 'lastSyncedAt' - 'history')::text,
			(roastr_state.state_sync(user_id, 2) - 'lastSyncedAt' - 'history')::text
		FROM roastr_state.state ORDER BY user_id"
}
counts() { # PORT: rows per table, to show the test covers every one
	q "$1" -c "SELECT string_agg(format('%s=%s', relname, (xpath('/row/n/text()',
			query_to_xml(format('SELECT count(*) AS n FROM roastr_state.%I', relname), false, true, '')))[1]), ' ' ORDER BY relname)
		FROM pg_class WHERE relnamespace = 'roastr_state'::regnamespace AND relkind = 'r'"
}

# Reads settle what is pending (from 0.8.0 an organization's rename reaches
# its members' rows at their next call): settle it first, so that the
# snapshot's own reads change nothing and it compares like with like.
q "$port_old" -c "SELECT count(roastr_state.state_full(user_id)) FROM roastr_state.state" >/dev/null
before=$(snapshot "$port_old")
history_old=$(q "$port_old" -c "SELECT roastr_state.state_full('$u1')->'_meta'->>'history'")
version_u1=$(q "$port_old" -c "SELECT version FROM roastr_state.state WHERE user_id = '$u1'")
empty=$(q "$port_old" -c "SELECT string_agg(relname, ' ') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = 'roastr_state' AND c.relkind = 'r'
	AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')")
if [[ -n "$empty" ]]; then echo "major_upgrade: tables outside the extension: $empty"; exit 1; fi

# (b) first, while the old server runs: the new major's pg_dumpall and pg_dump
"$newbin/pg_dumpall" -h "$dir" -p "$port_old" -U postgres --globals-only >"$dir/globals.sql"
"$newbin/pg_dump" -h "$dir" -p "$port_old" -U postgres -Fc -d "$db" -f "$dir/db.dump"
as_owner "$oldbin/pg_ctl" -D "$dir/old" -m fast -w stop >/dev/null

fail=0
check_cluster() { # LABEL PORT
	local label=$1 port=$2 after got
	after=$(snapshot "$port")
	if [[ "$before" != "$after" ]]; then
		echo "$label: the database differs from the one on $old:"
		diff <(echo "$before") <(echo "$after") | cut -c 1-300 | head -n 40 || true
		echo "sections before: $(grep '^== ' <<<"$before" | tr '\n' ' ')"
		echo "sections after:  $(grep '^== ' <<<"$after" | tr '\n' ' ')"
		fail=1
	fi
	got=$(q "$port" -c "SELECT concat_ws('|', p->>'identity', p->>'intolerance') FROM roastr_state.state_full('$u1') f, LATERAL (SELECT f->'persona') x(p)")
	if [[ "$got" != "$identity|$intolerance" ]]; then echo "$label: persona of u1 reads '$got'"; fail=1; fi
	# a device's token of the old history: one full resync, flagged
	got=$(q "$port" -c "SELECT (s->>'reset') || '|' || (s->>'cursor') || '|' || jsonb_array_length(s->'changes') || '|' ||
			(s->>'history' <> '$history_old')::text
		FROM roastr_state.state_sync('$u1', $version_u1, '$history_old') s")
	want="true|$version_u1|$(q "$port" -c "SELECT jsonb_array_length(roastr_state.state_sync('$u1', 0)->'changes')")|true"
	if [[ "$got" != "$want" ]]; then echo "$label: a cursor of the old history: $got, expected $want (reset|cursor|changes|new history)"; fail=1; fi
	# the bare cursor: nothing new
	got=$(q "$port" -c "SELECT (s->>'reset') || '|' || jsonb_array_length(s->'changes') FROM roastr_state.state_sync('$u1', $version_u1) s")
	if [[ "$got" != "false|0" ]]; then echo "$label: a bare cursor at the last version: $got"; fail=1; fi
	# writing goes on
	got=$(q "$port" -c "SELECT roastr_state.patch('$u1', '{\"auth.name\": \"Uno\"}')->>'version'")
	if [[ "$got" != "$((version_u1 + 1))" ]]; then echo "$label: the next write got version $got, expected $((version_u1 + 1))"; fail=1; fi
	got=$(q "$port" -c "SELECT (roastr_state.patch('$u1', '{\"roasting.roast_level\": 5, \"roasting.shield_level\": \"estricto\"}', 2, '$mid') - 'history')::text")
	if [[ "$got" != '{"applied": ["roasting.roast_level", "roasting.shield_level"], "version": 3}' ]]; then
		echo "$label: a retried mutation returned $got"; fail=1
	fi
	got=$(q "$port" -c "SELECT roastr_state.patch('$u1', '{\"persona.intolerance\": \"after the move\"}')->>'version'" \
		-c "SELECT concat_ws('|', p->>'identity', p->>'intolerance') FROM roastr_state.state_full('$u1') f, LATERAL (SELECT f->'persona') x(p)")
	if [[ "$got" != "$((version_u1 + 2))
$identity|after the move" ]]; then echo "$label: a persona write after the move: $got"; fail=1; fi
	got=$(q "$port" -c "SELECT (roastr_state.consume_roasts('$u1', 1, 'order-2')->>'remaining_roasts') = (roastr_state.state_full('$u1')->'usage'->>'remaining_roasts')")
	if [[ "$got" != "t" ]]; then echo "$label: consume_roasts after the move disagrees with state_full"; fail=1; fi
	got=$(q "$port" -c "SELECT string_agg(roastr_state.apply_polar_webhook(id, ts,
			'v1,' || encode(hmac(convert_to(id || '.' || ts || '.' || body, 'UTF8'),
				decode('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64'), 'sha256'), 'base64'), body)->>'idempotent', ',' ORDER BY id)
		FROM (SELECT id, body, (extract(epoch FROM now())::bigint)::text AS ts FROM public.delivered) d")
	if [[ "$got" != "true,true" ]]; then echo "$label: webhook redeliveries after the move: idempotent=$got"; fail=1; fi
	got=$(q "$port" -c "SELECT (roastr_state.state_full('$u3')->'subscription')::text")
	case "$got" in
		*'"cancel_at_period_end": true'*'"plan": "pro"'* | *'"plan": "pro"'*'"cancel_at_period_end": true'*) ;;
		*) echo "$label: u3's subscription after the move: $got"; fail=1 ;;
	esac
	if [[ $fail -eq 0 ]]; then
		echo "$label: ok ($(echo "$after" | wc -l) lines identical; $(counts "$port"))"
	fi
}

# ---------------------------------------------------------- (a) pg_upgrade
initdb_at "$newbin" "$dir/a" "$port_a"
if ! as_owner "$newbin/pg_upgrade" --copy -b "$oldbin" -B "$newbin" -d "$dir/old" -D "$dir/a" \
	-p "$port_old" -P "$port_a" -s "$dir" -U postgres >"$dir/pg_upgrade.log" 2>&1; then
	echo "pg_upgrade $old -> $new failed:"
	tail -n 40 "$dir/pg_upgrade.log"
	find "$dir/a" -name '*.log' -path '*pg_upgrade_output.d*' -exec tail -n 20 {} + 2>/dev/null || true
	exit 1
fi
start_at "$newbin" "$dir/a"
check_cluster "pg_upgrade $old -> $new" "$port_a"

# ------------------------------------------------ (b) pg_dump / pg_restore
initdb_at "$newbin" "$dir/b" "$port_b"
start_at "$newbin" "$dir/b"
# (the globals name the bootstrap superuser, which exists: that one line fails)
psql -X -q -h "$dir" -p "$port_b" -U postgres -d postgres -f "$dir/globals.sql" >"$dir/globals.log" 2>&1 || true
if grep -v 'role "postgres" already exists' "$dir/globals.log" | grep -q ERROR; then
	echo "restoring the globals failed:"; cat "$dir/globals.log"; exit 1
fi
psql -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port_b" -U postgres -d postgres -c "CREATE DATABASE $db" >/dev/null
if ! "$newbin/pg_restore" -h "$dir" -p "$port_b" -U postgres -d "$db" --exit-on-error "$dir/db.dump" >"$dir/restore.log" 2>&1; then
	echo "pg_restore into $new failed:"; cat "$dir/restore.log"; exit 1
fi
check_cluster "pg_dump/pg_restore $old -> $new" "$port_b"

if [[ $fail -ne 0 ]]; then
	keep=1
	echo "major_upgrade: FAILED (clusters kept in $dir)"
	exit 1
fi
echo "major_upgrade: ok ($old -> $new by pg_upgrade and by pg_dump/pg_restore)"
