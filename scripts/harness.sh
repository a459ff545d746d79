# shellcheck shell=bash
# scripts/harness.sh — what the measuring scripts (scripts/bench.sh,
# scripts/soak.sh) and the Node-driven tests share.  Meant to be SOURCED
# after `cd` to the top of the tree, with HARNESS_NAME set (the log prefix).
#
#   log MSG...                 progress line on stderr: [NAME hh:mm:ss] MSG
#   q ARGS...                  psql -X -At -v ON_ERROR_STOP=1 ARGS
#   harness_build              missing packages, then build and install
#   harness_workdir            $work: a temporary directory; $bg_pids: the
#                              background processes to kill at the end
#   harness_cleanup            kill $bg_pids, stop the cluster, remove $work
#   server_ticks               CPU ticks of the whole server whose
#                              postmaster pid is $PM
#   gateway_node_modules       the gateway's Node packages, exactly as locked
#                              (again only when the lock file changed)
#   client_node_modules        the same for the device client (client/)
#
# Like scripts/cluster.sh it does not change the caller's shell options.

log() { printf '[%s %s] %s\n' "${HARNESS_NAME:-harness}" "$(date +%H:%M:%S)" "$*" >&2; }

q() { psql -X -At -v ON_ERROR_STOP=1 "$@"; }

harness_build() {
	bash scripts/deps.sh >&2
	log "building and installing roastr_state"
	make -s >/dev/null
	make -s install >/dev/null
}

harness_workdir() {
	work=$(mktemp -d "/tmp/roastr_${HARNESS_NAME:-harness}.XXXXXX")
	bg_pids=()
}

harness_cleanup() {
	local p
	for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null || true; done
	if declare -F cluster_stop >/dev/null; then
		cluster_stop >/dev/null 2>&1 || true
	fi
	[ -n "${work:-}" ] && rm -rf "$work"
}

# CPU ticks of the whole server: the postmaster, its live children, and the
# children it has already reaped (cutime/cstime), so backends that exit at
# the end of a run are counted too.
server_ticks() {
	local pids p
	pids=$(ps -o pid= --ppid "$PM" || true)
	{
		cat "/proc/$PM/stat"
		for p in $pids; do cat "/proc/$p/stat" 2>/dev/null || true; done
	} | awk 'NR == 1 { sub(/^.*\) /, ""); t += $12 + $13 + $14 + $15; next }
			 { sub(/^.*\) /, ""); t += $12 + $13 }
			 END { print t }'
}

gateway_node_modules() {
	local stamp=gateway/node_modules/.roastr-lock-stamp
	if ! cmp -s gateway/package-lock.json "$stamp" 2>/dev/null; then
		npm ci --prefix gateway --no-audit --no-fund --loglevel=error >/dev/null || return 1
		cp gateway/package-lock.json "$stamp"
	fi
}

client_node_modules() {
	local stamp=client/node_modules/.roastr-lock-stamp
	if ! cmp -s client/package-lock.json "$stamp" 2>/dev/null; then
		npm ci --prefix client --no-audit --no-fund --loglevel=error >/dev/null || return 1
		cp client/package-lock.json "$stamp"
	fi
}

# pgbouncer_start DIR PORT USERS DATABASES [SETTINGS]
#   Debian's PgBouncer in pool_mode = transaction, listening only on a unix
#   socket in DIR (port PORT), trust auth for the space-separated USERS,
#   DATABASES the lines of its [databases] section, SETTINGS more lines of
#   its [pgbouncer] section; run as the cluster's OS user (it refuses
#   root).  Sets $pgb_pid; the caller kills it.  Its own pid (for a RELOAD
#   by SIGHUP) is in DIR/pgbouncer.pid.
pgbouncer_start() {
	local dir=$1 port=$2 users=$3 databases=$4 settings=${5:-} u owner bin
	bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
	[ -x "$bin" ] || { echo "pgbouncer not found (scripts/deps.sh installs it)" >&2; return 1; }
	owner=$(stat -c %U "$ROASTR_CLUSTER_DIR")
	: >"$dir/userlist.txt"
	for u in $users; do printf '"%s" ""\n' "$u" >>"$dir/userlist.txt"; done
	cat >"$dir/pgbouncer.ini" <<INI
[databases]
$databases
[pgbouncer]
pool_mode = transaction
listen_addr =
listen_port = $port
unix_socket_dir = $dir
auth_type = trust
auth_file = $dir/userlist.txt
stats_users = postgres
max_client_conn = 200
default_pool_size = 2
reserve_pool_size = 0
server_lifetime = 3600
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
$settings
INI
	chmod 755 "$dir"
	chown -R "$owner": "$dir"
	runuser -u "$owner" -- "$bin" "$dir/pgbouncer.ini" >"$dir/stdout.log" 2>&1 &
	pgb_pid=$!
	for _ in $(seq 100); do [ -S "$dir/.s.PGSQL.$port" ] && break; sleep 0.05; done
	[ -S "$dir/.s.PGSQL.$port" ] || { echo "pgbouncer did not start:" >&2; cat "$dir"/*.log >&2; return 1; }
	echo "pgbouncer: $("$bin" --version | head -n 1), pool_mode = transaction, in $dir"
}

# npm_test_report NAME DIR [ARGS...]
#   `npm test` in DIR (extra ARGS go to node --test), reported the way the
#   test/extra scripts report: one line per test (the whole output when one
#   failed), node's summary, then "NAME: ok" or "NAME: FAILED".  Returns
#   npm's exit status.
npm_test_report() {
	local name=$1 dir=$2 out status=0
	shift 2
	out=$(mktemp)
	npm test --prefix "$dir" --silent ${1:+--} "$@" >"$out" 2>&1 || status=$?
	if [ "$status" -ne 0 ]; then
		cat "$out"
	else
		grep -E '^(not )?ok [0-9]+ - |^[✔✖] |randomized: ' "$out" || true
	fi
	grep -E '^(#|ℹ) (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) ' "$out" || true
	rm -f "$out"
	if [ "$status" -ne 0 ]; then
		echo "$name: FAILED (npm test exited $status)"
	else
		echo "$name: ok"
	fi
	return "$status"
}

# The soaks' report (scripts/soak.sh, scripts/soak_prod.sh): the check rows
# of $work/checks0.tsv and $work/checks.tsv (section, check, detail, ok,
# ms), the time each section's checks took, the count of failed checks, and
# the examples behind the failures ($work/diagnose.txt).
soak_checks_table() {
	echo "== checks (ms each)"
	cat "$work/checks0.tsv" "$work/checks.tsv" |
		awk -F '\t' '{ printf "  %-4s %-13s %-68s %8s  %s\n", ($4 == "t" ? "ok" : "FAIL"), $1, $2, $5, $3 }'
}
soak_section_times() {
	awk -F '\t' '{ t[$1] += $5; if (!($1 in o)) o[$1] = ++n; k[o[$1]] = $1 }
		END { for (i = 1; i <= n; i++) printf "    %-48s %.1f\n", k[i], t[k[i]] / 1000 }' "$work/checks.tsv"
}
soak_failed_checks() {
	cat "$work/checks0.tsv" "$work/checks.tsv" | awk -F '\t' '$4 != "t"' | wc -l
}
soak_diagnosis() {
	if [ -s "$work/diagnose.txt" ]; then
		echo
		echo "== examples behind the failures"
		sed 's/^/  /' "$work/diagnose.txt"
	fi
}
