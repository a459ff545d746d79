#!/usr/bin/env bash
# scripts/deps.sh — install the Debian packages roastr_state needs to build
# and test, but only the ones that are missing.
#
#   bash scripts/deps.sh          (also: make deps)
#   PG=17 bash scripts/deps.sh    for another PostgreSQL major (see majors.sh)
#   bash scripts/deps.sh --list   print the package list, one a line, and
#                                 exit (scripts/pgroot.sh builds its root
#                                 from it)
#
# PG defaults to the major of the running Debian release (15 on Debian 12,
# 17 on Debian 13).  Prints a single "deps: all present" line when nothing is
# missing.  When something is missing it runs `apt-get update` once and
# installs just the missing packages (root only; a non-root user is told
# what to install).
set -euo pipefail

# shellcheck source=scripts/majors.sh
source "$(dirname "${BASH_SOURCE[0]}")/majors.sh"
PG_MAJOR=${PG:-$(roastr_system_major || echo 15)}
roastr_check_major "$PG_MAJOR"
CLANG_MAJOR=$(roastr_clang_of "$PG_MAJOR")

# What the project needs.  (postgresql-contrib-NN is part of postgresql-NN
# on Debian 12 and 13, so it is not listed separately.)
PACKAGES=(
    "postgresql-$PG_MAJOR"               # server + contrib modules + initdb/pg_ctl
    "postgresql-server-dev-$PG_MAJOR"    # pg_config, PGXS, pg_regress, pg_isolation_regress, TAP perl modules
    libsodium-dev                        # crypto used by the extension
    "postgresql-$PG_MAJOR-pgtap"         # pgTAP, loaded by the pg_regress tests
    libipc-run-perl                      # IPC::Run, needed by PostgreSQL::Test::Cluster (TAP tests)
    pkg-config                           # the Makefile asks it for libsodium's flags
    make
    gcc
    valgrind                             # the C unit tests run under memcheck (test/unit/run.sh)
    clang                                # libFuzzer harnesses (make fuzz, test/fuzz/)
    "libclang-rt-$CLANG_MAJOR-dev"       # libFuzzer and the sanitizer runtimes of the release's clang
    pgbouncer                            # the transaction-pooler tests (test/extra/pooler.sh, gateway_pooler.sh)
)

if [[ "${1:-}" == --list ]]; then
    printf '%s\n' "${PACKAGES[@]}" nodejs npm
    exit 0
fi

# Another release's major is tested in a debootstrap root of that release
# (scripts/pgroot.sh), never installed here.
system_suite=$(roastr_system_suite)
if [[ -n "$system_suite" && "$system_suite" != "$(roastr_suite_of "$PG_MAJOR")" ]]; then
    echo "deps: PostgreSQL $PG_MAJOR is tested on Debian $(roastr_suite_of "$PG_MAJOR"), this system is $system_suite:" >&2
    echo "deps: 'make test PG=$PG_MAJOR' runs it in a debootstrap root (scripts/pgroot.sh)" >&2
    exit 1
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps: dpkg-query not found; this script only knows Debian/Ubuntu." >&2
    echo "deps: please install the equivalents of: ${PACKAGES[*]}" >&2
    exit 1
fi

# A package counts as present only when dpkg says "install ok installed"
# (a removed-but-not-purged package reports "deinstall ok config-files").
is_installed() {
    local status
    status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done

# The reference gateway's test (test/extra/gateway_e2e.sh) needs Node.js 18+
# and npm.  Only when the commands are missing: a Node.js from NodeSource or
# nvm already brings both (NodeSource's nodejs conflicts with Debian's npm).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    missing+=(nodejs npm)
fi

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "deps: all present"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "deps: missing Debian packages: ${missing[*]}" >&2
    echo "deps: run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
fi

echo "deps: installing missing packages: ${missing[*]}"
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"

# Verify: apt-get can succeed and still leave a package unconfigured.
still_missing=()
for pkg in "${missing[@]}"; do
    is_installed "$pkg" || still_missing+=("$pkg")
done
if [[ ${#still_missing[@]} -ne 0 ]]; then
    echo "deps: still missing after apt-get install: ${still_missing[*]}" >&2
    exit 1
fi
echo "deps: installed ${missing[*]}"
