#!/usr/bin/env bash
# The master key file (roastr_state.master_key_file): every way it can be
# wrong gives a clear error naming the setting, never key material, never a
# crash or a plaintext fallback; a broken file does not stop the server and
# fixing it needs no restart; nothing is rewritten while keys are missing;
# rotation moves every data key to the new master key, after which the old
# key can leave the file.  Each part needs a server started with a given
# file (or setting), so this starts its own clusters:
#
#  not preloaded (each new backend reads the file at its first key use):
#   (a) a file with group access (0640): F0000, naming the file and the
#       setting, at the first read and at the first write; also a
#       directory in its place ("not a regular file") and, when run as
#       root, a file of another user ("is not owned");
#   (b) bad lines -- a short key, a non-hex digit, a repeated id -- F0000
#       "invalid master key file", "Line N"; the valid key of the same file
#       and the bad line's digits appear nowhere;
#   (c) a missing file: F0000 "could not read master key file";
#   (d) the setting emptied: 55000 "roastr_state.master_key_file is not set";
#  preloaded (the postmaster reads the file at start):
#   (e) started with a broken file: the server starts (a WARNING in the
#       log), calls without persona text work, persona calls fail with
#       F0000; the file is fixed and the same session's next transaction
#       works, without a restart;
#   (f) restarted with the file missing: patch, state_full, state_sync,
#       ensure_user and rotate_master_key fail clearly, and the user_keys
#       and persona rows are byte-identical afterwards, down to ctid and
#       xmin (nothing was rewritten, not even with the same bytes);
#   (g) rotation: key 2 is added to the file (mode 0600, same owner);
#       rotate_master_key(2) is called until remaining = 0 over 5 users;
#       every data key is then under key 2, rewrapped, persona ciphertext
#       and versions untouched, everything decrypts; key 1 is removed from
#       the file: everything still decrypts, a new user's key is under 2;
#   (h) a data key under a master key the file no longer has (an old
#       wrapping put back, as a restored backup would): F0000 "could not
#       unwrap the data key", the id in the detail; putting the key back
#       in the file and rotating again cures it.
#  Finally no key's hex digits (nor the first 16 of them) are in any error
#  message psql received or in any server log.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/cluster.sh
source scripts/cluster.sh

work=$(mktemp -d)
logs=()
trap 'cluster_stop; rm -rf "$work"' EXIT
port=${ROASTR_KEYS_PORT:-5582}
bindir=$(pg_config --bindir)
t0=$SECONDS

fail=0
bad() { echo "FAIL: $*"; fail=1; }

newkey() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
K2=$(newkey)
BADSHORT=$(newkey | cut -c1-62)
BADHEX=$(newkey | cut -c1-63)g
DUPKEY=$(newkey)

u1=b1000000-0000-4000-8000-000000000001
u2=b2000000-0000-4000-8000-000000000002
u3=b3000000-0000-4000-8000-000000000003
u4=b4000000-0000-4000-8000-000000000004
u5=b5000000-0000-4000-8000-000000000005
u6=b6000000-0000-4000-8000-000000000006
u7=b7000000-0000-4000-8000-000000000007

# make_keys TEXT: a new file beside the key file, mode 0600, owned by the
# server's OS user; prints its path.  put_keys TEXT: replace the key file
# with one atomically, as a secret manager would.
make_keys() {
	local tmp
	tmp=$(umask 077; mktemp "$ROASTR_CLUSTER_DIR/keys.XXXXXX")
	printf '%s' "$1" >"$tmp"
	if [ "$(id -u)" -eq 0 ]; then chown "$(stat -c %U "$ROASTR_CLUSTER_DIR")" "$tmp"; fi
	echo "$tmp"
}
put_keys() { mv -f "$(make_keys "$1")" "$keyfile"; }

server() {     # server start|stop
	cluster_run_as_owner "$bindir/pg_ctl" -D "$ROASTR_CLUSTER_DIR/data" -w -l "$(cluster_log)" "$1" >/dev/null
}

# One session: SQL on stdin; "\warn @step NAME" before a statement and
# "\echo @state NAME :SQLSTATE" after it come from st().
st() { printf '\\warn @step %s\n%s\n\\echo @state %s :SQLSTATE\n' "$1" "$2" "$1"; }
sess() {
	psql -X -At -v VERBOSITY=verbose >"$work/out" 2>"$work/err" || true
	cat "$work/err" >>"$work/all_err"
}
# expect NAME SQLSTATE [fixed strings the error must contain...]
expect() {
	local name=$1 want=$2 got block s
	shift 2
	got=$(sed -n "s/^@state $name //p" "$work/out")
	block=$(awk -v s="@step $name" '$0 == s { f = 1; next } /^@step / { f = 0 } f' "$work/err")
	if [ "$got" != "$want" ]; then
		bad "$name: SQLSTATE '$got', expected $want${block:+; error: $(echo "$block" | head -3 | tr '\n' ' ')}"
		return
	fi
	for s in "$@"; do
		if ! grep -q -F -e "$s" <<<"$block"; then
			bad "$name: the error does not contain '$s': $(echo "$block" | tr '\n' ' ')"
		fi
	done
}
val() { psql -X -At -v ON_ERROR_STOP=1 -c "$1"; }

# ------------------------------------------ not preloaded: (a) to (d)
echo "not preloaded: (a) group access, (b) bad lines, (c) missing file, (d) setting unset"
# shellcheck disable=SC2119   # no extra postgresql.conf lines
ROASTR_PORT=$port ROASTR_PRELOAD="" cluster_start >/dev/null
keyfile=$ROASTR_MASTER_KEY_FILE
K1a=$(sed -n 's/^1 \([0-9a-f]\{64\}\)$/\1/p' "$keyfile")
K1=$K1a
good1=$(cat "$keyfile")
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE EXTENSION roastr_state;
SELECT roastr_state.ensure_user('$u1', 'one@example.com');
SELECT roastr_state.patch('$u1', '{"persona.identity": "first text"}');
SQL

# (a) group access: the first read, and the first write, of a new backend
chmod 640 "$keyfile"
st a_read "SELECT roastr_state.state_full('$u1')->'persona'->>'identity';" | sess
expect a_read F0000 "has group or world access" "roastr_state.master_key_file" "$keyfile"
st a_write "SELECT roastr_state.patch('$u1', '{\"persona.identity\": \"second text\"}');" | sess
expect a_write F0000 "has group or world access" "roastr_state.master_key_file"
chmod 600 "$keyfile"
mv "$keyfile" "$keyfile.saved"
mkdir "$keyfile"
st a_dir "SELECT roastr_state.state_full('$u1');" | sess
expect a_dir F0000 "is not a regular file" "roastr_state.master_key_file"
rmdir "$keyfile"
mv "$keyfile.saved" "$keyfile"
# owned by another user, readable by the server (root can make one): the
# owner is checked first
if [ "$(id -u)" -eq 0 ]; then
	chown root: "$keyfile"
	chmod 604 "$keyfile"
	st a_owner "SELECT roastr_state.state_full('$u1');" | sess
	expect a_owner F0000 "is not owned by the database server's user" "roastr_state.master_key_file" "$keyfile"
	chmod 600 "$keyfile"
	chown "$(stat -c %U "$ROASTR_CLUSTER_DIR")" "$keyfile"
fi
st a_fixed "SELECT roastr_state.state_full('$u1')->'persona'->>'identity';" | sess
expect a_fixed 00000
grep -q -x "first text" "$work/out" || bad "a_fixed: the persona did not read back: $(cat "$work/out")"

# (b) bad lines; the valid key on line 2 must not be echoed
for c in "short|# keys\n1 $K1\n2 $BADSHORT\n|Line 3 is not" \
	"nonhex|1 $K1\n\n2 $BADHEX\n|Line 3 is not" \
	"duplicate|1 $K1\n1 $DUPKEY\n|Line 2 repeats a key id" \
	"trailing|1 $K1 # the old one\n|Line 1 is not" \
	"empty|# nothing\n|The file holds no key"; do
	IFS='|' read -r name text detail <<<"$c"
	put_keys "$(printf '%b' "$text")"
	st "b_$name" "SELECT roastr_state.patch('$u1', '{\"persona.identity\": \"second text\"}');" | sess
	expect "b_$name" F0000 "invalid master key file \"$keyfile\"" "$detail" "roastr_state.master_key_file"
done
put_keys "$good1"$'\n'

# (c) missing
rm -f "$keyfile"
st c_missing "SELECT roastr_state.state_full('$u1');" | sess
expect c_missing F0000 "could not read master key file \"$keyfile\": No such file or directory" "roastr_state.master_key_file"
put_keys "$good1"$'\n'

# (d) unset
psql -X -q -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET roastr_state.master_key_file = ''" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.2
st d_unset "SELECT roastr_state.patch('$u1', '{\"persona.identity\": \"second text\"}');" | sess
expect d_unset 55000 "roastr_state.master_key_file is not set"
psql -X -q -v ON_ERROR_STOP=1 -c "ALTER SYSTEM RESET roastr_state.master_key_file" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.2
st d_reset "SELECT roastr_state.patch('$u1', '{\"persona.identity\": \"second text\"}')->'applied';" | sess
expect d_reset 00000
cp "$(cluster_log)" "$work/log1"
logs+=("$work/log1")
cluster_stop

# ------------------------------------------------ preloaded: (e) to (h)
echo "preloaded: (e) broken file at start, (f) restart without the file, (g) rotation, (h) unknown key id"
# shellcheck disable=SC2119
ROASTR_PORT=$port cluster_start >/dev/null
keyfile=$ROASTR_MASTER_KEY_FILE
log=$(cluster_log)
K1=$(sed -n 's/^1 \([0-9a-f]\{64\}\)$/\1/p' "$keyfile")
good1=$(cat "$keyfile")
if [ -z "$K1a" ] || [ -z "$K1" ]; then bad "could not read the keys cluster.sh wrote"; fi
{
	echo "CREATE EXTENSION roastr_state;"
	for u in $u1 $u2 $u3 $u4 $u5; do
		echo "SELECT roastr_state.ensure_user('$u', '${u:0:2}@example.com');"
		echo "SELECT roastr_state.patch('$u', '{\"subscription.plan\": \"pro\"}');"
		echo "SELECT roastr_state.patch('$u', '{\"persona.identity\": \"identity of $u\", \"persona.tolerance\": \"tolerance of $u\"}');"
	done
} | psql -X -q -v ON_ERROR_STOP=1 >/dev/null
# the persona texts of u1..u5, as state_full decrypts them
personas() {
	val "SELECT string_agg(concat(user_id, '=', p->>'identity', '/', p->>'tolerance'), ' ' ORDER BY user_id)
		   FROM (SELECT user_id, roastr_state.state_full(user_id)->'persona' AS p FROM roastr_state.state
				  WHERE user_id IN ('$u1', '$u2', '$u3', '$u4', '$u5')) s"
}
want_personas=""
for u in $u1 $u2 $u3 $u4 $u5; do want_personas+="${want_personas:+ }$u=identity of $u/tolerance of $u"; done
[ "$(personas)" = "$want_personas" ] || bad "setup: persona texts read back as $(personas)"

# (e) started with a short key: the server starts anyway
server stop
put_keys "1 ${K1:0:60}"$'\n'
server start || bad "e: the server did not start with a broken key file"
grep -q "WARNING:  invalid master key file \"$keyfile\"" "$log" ||
	bad "e: no WARNING about the key file in the log at start"
{
	st e_plain "SELECT roastr_state.patch('$u1', '{\"roasting.enabled\": false}')->'applied';"
	st e_read "SELECT roastr_state.state_full('$u1');"
	st e_write "SELECT roastr_state.patch('$u2', '{\"persona.identity\": \"changed\"}');"
	st e_rotate "SELECT roastr_state.rotate_master_key();"
	printf '\\! mv -f %s %s\n' "$(make_keys "$good1"$'\n')" "$keyfile"
	st e_fixed "SELECT roastr_state.state_full('$u1')->'persona'->>'identity';"
} | sess
expect e_plain 00000
expect e_read F0000 "invalid master key file" "Line 1 is not" "roastr_state.master_key_file"
expect e_write F0000 "invalid master key file" "roastr_state.master_key_file"
expect e_rotate F0000 "invalid master key file"
expect e_fixed 00000
grep -q -x "identity of $u1" "$work/out" || bad "e: after the fix, the same session did not read the persona back"

# (f) restart without the file: errors, and nothing rewritten
snap() {
	val "SELECT string_agg(format('%s %s %s', ctid, xmin, k), E'\n' ORDER BY user_id) FROM roastr_state.user_keys k"
	val "SELECT string_agg(format('%s %s %s %s %s %s', ctid, xmin, user_id, encode(identity, 'hex'), encode(intolerance, 'hex'), encode(tolerance, 'hex')), E'\n' ORDER BY user_id) FROM roastr_state.persona"
	val "SELECT string_agg(format('%s %s %s', user_id, version, embeddings_model), E'\n' ORDER BY user_id) FROM roastr_state.state"
}
before=$(snap)
[ "$(grep -c '^(' <<<"$before")" = 10 ] || bad "f: expected 5 user_keys and 5 persona rows, got: $before"
server stop
mv "$keyfile" "$work/keys.saved"
server start || bad "f: the server did not start without its key file"
grep -q "WARNING:  could not read master key file \"$keyfile\"" "$log" ||
	bad "f: no WARNING about the missing key file in the log at start"
{
	st f_write "SELECT roastr_state.patch('$u1', '{\"persona.identity\": \"changed\"}');"
	st f_write_new_field "SELECT roastr_state.patch('$u1', '{\"persona.intolerance\": \"changed\"}');"
	st f_clear "SELECT roastr_state.patch('$u1', '{\"persona.identity\": null}');"
	st f_read "SELECT roastr_state.state_full('$u2');"
	st f_sync "SELECT roastr_state.state_sync('$u3', 0);"
	st f_ensure "SELECT roastr_state.ensure_user('$u4', 'new@example.com', 'New');"
	st f_rotate "SELECT roastr_state.rotate_master_key(2);"
	st f_newuser "SELECT roastr_state.ensure_user('$u6', 'six@example.com')->'_meta'->'version';"
	st f_newuser_persona "SELECT roastr_state.patch('$u6', '{\"persona.identity\": \"six\"}');"
	st f_delete "SELECT roastr_state.delete_user('$u6');"
} | sess
for s in f_write f_write_new_field f_clear f_read f_sync f_ensure f_rotate f_newuser_persona; do
	expect "$s" F0000 "could not read master key file \"$keyfile\": No such file or directory" "roastr_state.master_key_file"
done
expect f_newuser 00000
expect f_delete 00000
after=$(snap)
if [ "$before" != "$after" ]; then
	bad "f: rows changed while the key file was missing:"
	diff <(echo "$before") <(echo "$after") | head -20 | sed 's/^/    /'
fi
mv "$work/keys.saved" "$keyfile"
[ "$(personas)" = "$want_personas" ] || bad "f: after the file is back, persona texts read $(personas)"

# (g) rotation
old_keys=$(val "SELECT string_agg(user_id || ' ' || encode(wrapped, 'hex'), ',' ORDER BY user_id) FROM roastr_state.user_keys")
before_persona=$(val "SELECT string_agg(user_id || encode(identity, 'hex') || encode(tolerance, 'hex'), ',' ORDER BY user_id) FROM roastr_state.persona")
before_versions=$(val "SELECT string_agg(user_id || ' ' || version || ' ' || field_log::text, ',' ORDER BY user_id) FROM roastr_state.state")
put_keys "$good1"$'\n'"2 $K2"$'\n'
[ "$(stat -c %a "$keyfile")" = 600 ] || bad "g: the key file's mode is $(stat -c %a "$keyfile")"
calls=""
for _ in 1 2 3 4 5; do
	r=$(val "SELECT roastr_state.rotate_master_key(2)::text")
	calls+="$r;"
	[ "$(val "SELECT ('$r'::jsonb)->>'remaining'")" = 0 ] && break
done
want_calls='{"key_id": 2, "remaining": 3, "rewrapped": 2};{"key_id": 2, "remaining": 1, "rewrapped": 2};{"key_id": 2, "remaining": 0, "rewrapped": 1};'
[ "$calls" = "$want_calls" ] || bad "g: rotate_master_key(2) returned $calls"
r=$(val "SELECT roastr_state.rotate_master_key(2)::text")
[ "$r" = '{"key_id": 2, "remaining": 0, "rewrapped": 0}' ] || bad "g: a call after the end returned $r"
k=$(val "SELECT count(*) FILTER (WHERE master_key_id = 2 AND rewrapped_at IS NOT NULL) || '/' || count(*) FROM roastr_state.user_keys")
[ "$k" = "5/5" ] || bad "g: data keys under key 2 and rewrapped: $k"
new_keys=$(val "SELECT string_agg(user_id || ' ' || encode(wrapped, 'hex'), ',' ORDER BY user_id) FROM roastr_state.user_keys")
same=$(comm -12 <(tr ',' '\n' <<<"$old_keys" | sort) <(tr ',' '\n' <<<"$new_keys" | sort) | wc -l)
[ "$same" = 0 ] || bad "g: $same wrapped keys did not change"
[ "$(val "SELECT string_agg(user_id || encode(identity, 'hex') || encode(tolerance, 'hex'), ',' ORDER BY user_id) FROM roastr_state.persona")" = "${before_persona}" ] ||
	bad "g: rotation changed persona ciphertext"
[ "$(val "SELECT string_agg(user_id || ' ' || version || ' ' || field_log::text, ',' ORDER BY user_id) FROM roastr_state.state")" = "$before_versions" ] ||
	bad "g: rotation changed a version or the change log"
[ "$(personas)" = "$want_personas" ] || bad "g: after rotation, persona texts read $(personas)"
# key 1 leaves the file
put_keys "# key 1 retired"$'\n'"2 $K2"$'\n'
[ "$(personas)" = "$want_personas" ] || bad "g: without key 1, persona texts read $(personas)"
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
SELECT roastr_state.ensure_user('$u7', 'seven@example.com');
SELECT roastr_state.patch('$u7', '{"persona.identity": "seven"}');
SQL
[ "$(val "SELECT master_key_id FROM roastr_state.user_keys WHERE user_id = '$u7'")" = 2 ] ||
	bad "g: a new user's data key is not under key 2"
[ "$(val "SELECT roastr_state.state_full('$u7')->'persona'->>'identity'")" = seven ] ||
	bad "g: a new user's persona does not read back"

# (h) an old wrapping (under key 1, which the file no longer has) put back
u1_old=$(tr ',' '\n' <<<"$old_keys" | sed -n "s/^$u1 //p")
psql -X -q -v ON_ERROR_STOP=1 -c "UPDATE roastr_state.user_keys SET master_key_id = 1, wrapped = decode('$u1_old', 'hex') WHERE user_id = '$u1'" >/dev/null
{
	st h_read "SELECT roastr_state.state_full('$u1');"
	st h_write "SELECT roastr_state.patch('$u1', '{\"persona.identity\": \"changed\"}');"
	st h_rotate "SELECT roastr_state.rotate_master_key();"
	st h_other "SELECT roastr_state.state_full('$u2')->'persona'->>'identity';"
} | sess
expect h_read F0000 "could not unwrap the data key of user $u1" "Master key 1 is not in the file named by roastr_state.master_key_file"
expect h_write F0000 "could not unwrap the data key of user $u1"
expect h_rotate F0000 "could not unwrap the data key of user $u1"
expect h_other 00000
put_keys "1 $K1"$'\n'"2 $K2"$'\n'
r=$(val "SELECT roastr_state.rotate_master_key()::text")
[ "$r" = '{"key_id": 2, "remaining": 0, "rewrapped": 1}' ] || bad "h: with key 1 back, rotation returned $r"
put_keys "2 $K2"$'\n'
[ "$(personas)" = "$want_personas" ] || bad "h: after the second rotation, persona texts read $(personas)"

cp "$log" "$work/log2"
logs+=("$work/log2")
cluster_stop

# ------------------------------------------- no key material anywhere
for k in "$K1a" "$K1" "$K2" "$BADSHORT" "${BADHEX%g}" "$DUPKEY"; do
	for f in "$work/all_err" "${logs[@]}"; do
		if grep -q -i -e "${k:0:16}" "$f"; then
			bad "key material (${k:0:4}...) found in $(basename "$f")"
		fi
	done
done
if [ "$fail" -eq 0 ]; then
	echo "master_keys: ok ($((SECONDS - t0)) s)"
fi
exit "$fail"
