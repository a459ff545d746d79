# shellcheck shell=bash
# scripts/cluster.sh — a throwaway PostgreSQL cluster (of pg_config's major)
# for tests, the demo and the benchmark.  Meant to be SOURCED, not run:
#
#   source scripts/cluster.sh
#   trap cluster_stop EXIT
#   cluster_start ["extra postgresql.conf line" ...]
#   psql -c 'select 1'          # PGHOST/PGPORT/PGUSER/PGDATABASE are exported
#   tail "$(cluster_log)"
#
# Functions:
#   cluster_start [conf lines...]  initdb + start on a private unix socket;
#                                  exports PGHOST PGPORT PGUSER PGDATABASE
#                                  and ROASTR_CLUSTER_DIR; creates Supabase's
#                                  roles.  Returns non-zero (and cleans up) on
#                                  failure.
#   cluster_stop                   stop the server and delete everything;
#                                  safe to call twice or without a start.
#   cluster_log                    print the server log's path.
#   cluster_run_as_owner CMD...    run CMD as the OS user owning the cluster
#                                  (postgres when we are root, else ourselves).
#
# Environment knobs:
#   ROASTR_PRELOAD   shared_preload_libraries value (default: roastr_state;
#                    set it to the empty string for no preload line at all).
#   ROASTR_PORT      port number (default 5499).  Only the socket file name
#                    depends on it: the server listens on no TCP address.
#   PG_CONFIG        pg_config to use (default: pg_config from PATH).
#   ROASTR_SYSID     give the new cluster this system identifier instead of
#                    initdb's random one (test/set_sysid.c), so that history
#                    tokens ("<system identifier>.<timeline>") print the same
#                    in every run: the regression and isolation suites'.
#
# Layout: $ROASTR_CLUSTER_DIR/ holds data/ (the data directory), server.log
# and the unix socket.  It is mode 700 and owned by the cluster's OS user,
# so only that user and root can connect (auth is trust).
#
# This file deliberately does not run `set -euo pipefail`: sourcing it must
# not change the caller's shell options.  It is written to work both with
# and without those options, and checks every step explicitly.

# Guard against being executed instead of sourced.
if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
    echo "cluster.sh: source this file (source scripts/cluster.sh); do not run it" >&2
    exit 2
fi

_ROASTR_DIR=""          # temp dir of the cluster we started, "" if none
_ROASTR_OWNER=""        # OS user that owns/runs it

# The OS user that runs the server: initdb/postgres refuse to run as root.
_cluster_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        echo postgres
    else
        id -un
    fi
}

# Run a command as the cluster owner, from a directory that user can enter
# (avoids "could not change directory" noise when cwd is e.g. /root).
cluster_run_as_owner() {
    local owner=${_ROASTR_OWNER:-$(_cluster_owner)}
    local dir=${_ROASTR_DIR:-/}
    if [[ $(id -u) -eq 0 && "$owner" != root ]]; then
        (cd "$dir" && runuser -u "$owner" -- "$@")
    else
        (cd "$dir" && "$@")
    fi
}

_cluster_bindir() {
    "${PG_CONFIG:-pg_config}" --bindir
}

cluster_log() {
    echo "${ROASTR_CLUSTER_DIR:-${_ROASTR_DIR:-}}/server.log"
}

# Print why start failed, show the log tail, and clean up.
_cluster_fail() {
    echo "cluster_start: $*" >&2
    if [[ -n "$_ROASTR_DIR" && -s "$_ROASTR_DIR/server.log" ]]; then
        echo "---- last 50 lines of $_ROASTR_DIR/server.log ----" >&2
        tail -n 50 "$_ROASTR_DIR/server.log" >&2
        echo "----" >&2
    fi
    cluster_stop
    return 1
}

cluster_start() {
    if [[ -n "$_ROASTR_DIR" ]]; then
        echo "cluster_start: a cluster is already running in $_ROASTR_DIR" >&2
        return 1
    fi

    local bindir port preload owner dir data line
    bindir=$(_cluster_bindir) || { echo "cluster_start: pg_config not found (run scripts/deps.sh)" >&2; return 1; }
    port=${ROASTR_PORT:-5499}
    preload=${ROASTR_PRELOAD-roastr_state}     # unset → default; "" → none
    owner=$(_cluster_owner)

    if [[ $(id -u) -eq 0 ]] && ! id -u "$owner" >/dev/null 2>&1; then
        echo "cluster_start: running as root but OS user '$owner' does not exist" >&2
        return 1
    fi

    dir=$(mktemp -d /tmp/roastr_state.XXXXXX) || { echo "cluster_start: mktemp failed" >&2; return 1; }
    _ROASTR_DIR=$dir
    _ROASTR_OWNER=$owner
    data=$dir/data

    # mktemp -d gives mode 700 owned by us; hand it to the server's user so
    # it can create the data dir, the socket and the log inside.
    if [[ $(id -u) -eq 0 ]]; then
        chown "$owner": "$dir" || { _cluster_fail "chown $dir failed"; return 1; }
    fi

    cluster_run_as_owner "$bindir/initdb" -D "$data" \
        --auth=trust --username=postgres --encoding=UTF8 --locale=C.UTF-8 -N \
        >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; _cluster_fail "initdb failed"; return 1; }

    if [[ -n "${ROASTR_SYSID:-}" ]]; then
        cc -O1 -Wall -I"$("${PG_CONFIG:-pg_config}" --includedir-server)" \
            -o "$dir/set_sysid" "$(dirname "${BASH_SOURCE[0]}")/../test/set_sysid.c" \
            && cluster_run_as_owner "$dir/set_sysid" "$data" "$ROASTR_SYSID" \
            && cluster_run_as_owner "$bindir/pg_resetwal" -f -D "$data" >/dev/null \
            || { _cluster_fail "setting the system identifier failed"; return 1; }
    fi

    # A throwaway master key for persona encryption (roastr_state.master_key_file):
    # one random 256-bit key, id 1, readable only by the server's OS user.
    (umask 077; printf '# throwaway key of scripts/cluster.sh\n1 %s\n' \
        "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" >"$dir/master.keys") \
        || { _cluster_fail "cannot write $dir/master.keys"; return 1; }
    if [[ $(id -u) -eq 0 ]]; then
        chown "$owner": "$dir/master.keys" || { _cluster_fail "chown master.keys failed"; return 1; }
    fi

    # Our settings go last in postgresql.conf, so they win over initdb's.
    {
        echo ""
        echo "# ---- added by scripts/cluster.sh ----"
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$dir'"
        echo "port = $port"
        if [[ -n "$preload" ]]; then
            echo "shared_preload_libraries = '$preload'"
        fi
        echo "fsync = off"
        echo "max_worker_processes = 16"
        echo "max_connections = 100"
        echo "log_min_messages = warning"
        echo "logging_collector = off"
        echo "roastr_state.master_key_file = '$dir/master.keys'"
        for line in "$@"; do
            echo "$line"
        done
    } >>"$data/postgresql.conf" || { _cluster_fail "cannot write $data/postgresql.conf"; return 1; }

    cluster_run_as_owner "$bindir/pg_ctl" -D "$data" -w -l "$dir/server.log" start \
        >"$dir/pg_ctl.log" 2>&1 \
        || { cat "$dir/pg_ctl.log" >&2; _cluster_fail "pg_ctl start failed"; return 1; }

    export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATABASE=postgres
    export ROASTR_CLUSTER_DIR=$dir
    export ROASTR_MASTER_KEY_FILE=$dir/master.keys

    # Supabase's API roles, with the attributes Supabase gives them.  Roles
    # are cluster-wide, so every database pg_regress creates sees them.
    "$bindir/psql" -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL' \
        || { _cluster_fail "creating the Supabase roles failed"; return 1; }
SET client_min_messages = warning;  -- no "already a member" notices
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticator') THEN
        CREATE ROLE authenticator LOGIN NOINHERIT;
    END IF;
END
$$;
GRANT anon, authenticated, service_role TO authenticator;
SQL
    return 0
}

cluster_stop() {
    local dir=$_ROASTR_DIR pid=""
    if [[ -n "$dir" ]]; then
        if [[ -f "$dir/data/postmaster.pid" ]]; then
            pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)
            cluster_run_as_owner "$(_cluster_bindir)/pg_ctl" -D "$dir/data" -m fast -w stop \
                >/dev/null 2>&1 || true
            # Last resort, so no server outlives its deleted directory: the
            # postmaster we started is still alive after a failed fast stop.
            if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
                kill -QUIT "$pid" 2>/dev/null || true     # immediate shutdown
                sleep 2
                kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
        rm -rf "$dir"
    fi
    # Forget the cluster only if the environment still points at it.
    if [[ -n "$dir" && "${ROASTR_CLUSTER_DIR:-}" == "$dir" ]]; then
        unset ROASTR_CLUSTER_DIR PGHOST PGPORT PGUSER PGDATABASE
    fi
    _ROASTR_DIR=""
    _ROASTR_OWNER=""
    return 0
}
