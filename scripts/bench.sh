#!/usr/bin/env bash
# scripts/bench.sh — `make bench`: roastr_state measured against what a user
# would build instead (issue 3), the gateway (issue 8) and at scale (issue 17).
#
#   make bench                        # every group (24 min on 2 cores; issue3 alone 18)
#   BENCH_SECONDS=2 make bench        # quick check of the machinery
#   BENCH_GROUPS=scale make bench     # one group (or several: "scale,gateway_scale")
#
# Installs what is missing, builds and installs the extension, starts one
# throwaway cluster (fsync on) and runs the groups of BENCH_GROUPS (default
# all, in this order):
#   issue3          10k users with 25 logged changes each in roastr_state, the
#                   PL/pgSQL twin and a bare table; pgbench scenarios, every
#                   variant three times, alternating (A B C A B C A B C);
#                   the targets of issue 3 (scripts/bench_issue3.sh)
#   gateway         the gateway with 1,000 devices (bench/gateway_load.js)
#   scale           BENCH_USERS (default 1,000,000) users and 10,000 users,
#                   the same pgbench scripts side by side, a plan-limit change
#                   and an organization rename under load, bytes per user,
#                   the notifier's memory (scripts/bench_scale.sh)
#   gateway_scale   10,000 devices on one gateway, then two gateways and one
#                   killed (bench/gateway_scale.js)
# Progress goes to stderr; the report (machine, settings, tables, the
# targets) goes to stdout and to bench/results/latest.md.  BENCHMARKS.md
# explains every scenario and knob.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

T=${BENCH_SECONDS:-10}
if ! [[ "$T" =~ ^[1-9][0-9]*$ ]]; then
	echo "bench: BENCH_SECONDS must be a positive integer (got '$T')" >&2
	exit 2
fi
REPS=${BENCH_REPS:-3}             # fewer only to try the machinery quickly
ALL_GROUPS="issue3 gateway scale gateway_scale"
GROUPS_ON=" "
for g in $(echo "${BENCH_GROUPS:-all}" | tr ',' ' '); do
	case " all $ALL_GROUPS " in
		*" $g "*) ;;
		*) echo "bench: unknown group '$g' in BENCH_GROUPS (groups: $ALL_GROUPS, or all)" >&2; exit 2 ;;
	esac
	if [ "$g" = all ]; then GROUPS_ON=" $ALL_GROUPS "; else GROUPS_ON="$GROUPS_ON$g "; fi
done
group_on() { [[ "$GROUPS_ON" == *" $1 "* ]]; }
NPROC=$(nproc)
CLK_TCK=$(getconf CLK_TCK)
export ROASTR_PORT=${ROASTR_PORT:-5497}
START_SECONDS=$SECONDS

HARNESS_NAME=bench
# shellcheck source=scripts/harness.sh
source scripts/harness.sh
harness_build

# shellcheck source=scripts/cluster.sh
source scripts/cluster.sh
harness_workdir
finish() {
	local rc=$?
	harness_cleanup
	exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "starting a throwaway cluster"
# autovacuum is off so that no run pays for another's dead rows: every run
# is preceded by an explicit VACUUM of the tables it writes, and a CHECKPOINT.
cluster_start "fsync = on" "shared_buffers = '256MB'" "max_connections = 50" \
	"autovacuum = off" >&2
PM=$(head -n 1 "$ROASTR_CLUSTER_DIR/data/postmaster.pid")

# ---------------------------------------------------------------------------
# Helpers shared by the groups
# ---------------------------------------------------------------------------

# Wait until no client backend of database $1 (default bench) is left
# (pgbench's backends exit just after it does).
wait_backends_gone() {
	local db=${1:-bench} i p n
	for i in $(seq 200); do
		n=0
		for p in $(ps -o pid= --ppid "$PM" || true); do
			if { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q "^postgres: postgres $db "; then
				n=$((n + 1))
			fi
		done
		[ "$n" -eq 0 ] && return 0
		sleep 0.05
	done
	log "warning: client backends still running after 10 s"
}

# Let the background notifier of database $1 (default: $PGDATABASE) send
# what the run queued, so its work is charged to the run that caused it.
wait_notifier_drained() {
	local i
	for i in $(seq 100); do
		[ "$(q ${1:+-d "$1"} -c "SELECT (roastr_state.notify_stats()->>'queued_bytes')::bigint = 0")" = t ] && return 0
		sleep 0.05
	done
	log "warning: the notifier still had queued payloads after 5 s"
}

# Nearest-rank percentile (in ms) of pgbench's per-transaction log, whose
# third column is the latency in microseconds.
log_percentile() {
	local pctl=$1
	shift
	cat "$@" | awk '{ print $3 }' | sort -n |
		awk -v p="$pctl" '{ a[NR] = $1 } END { if (NR == 0) { print "nan"; exit }
			i = int(p * NR); if (i < p * NR) i++; if (i < 1) i = 1; printf "%.3f", a[i] / 1000 }'
}

# ---------------------------------------------------------------------------
# The groups
# ---------------------------------------------------------------------------
mkdir -p bench/results
: >bench/results/latest.md

if group_on issue3; then
	# shellcheck source=scripts/bench_issue3.sh
	source scripts/bench_issue3.sh
fi

# The reference gateway under 1,000 devices (issue 8): its own database and
# gateway processes on this cluster; prints a Markdown block.
if group_on gateway; then
	log "gateway: 1,000 devices over 100 users, 200 writes/s (bench/gateway_load.js)"
	gateway_node_modules
	{ echo; env -u BENCH_USERS BENCH_SECONDS=$((T < 10 ? T : 30)) node bench/gateway_load.js; } | tee -a bench/results/latest.md
fi

# At scale (issue 17): BENCH_USERS users beside 10,000, in their own databases.
if group_on scale; then
	# shellcheck source=scripts/bench_scale.sh
	source scripts/bench_scale.sh
fi

# The gateway with 10,000 devices, then two gateways and one killed (issue 17).
if group_on gateway_scale; then
	log "gateway at scale: bench/gateway_scale.js"
	gateway_node_modules
	# 10,000 sockets in the gateway, as many in the device processes
	ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
	{ echo; env -u BENCH_USERS node bench/gateway_scale.js; } | tee -a bench/results/latest.md
fi
log "done in $(((SECONDS - START_SECONDS + 30) / 60)) min; report also in bench/results/latest.md"
