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
