#!/usr/bin/env bash
# scripts/deps.sh — install the Debian packages roastr_state needs to build
# and test, but only the ones that are missing.
#
#   bash scripts/deps.sh        (also: make deps)
#
# Prints a single "deps: all present" line when nothing is missing.  When
# something is missing it runs `apt-get update` once and installs just the
# missing packages (root only; a non-root user is told what to install).
set -euo pipefail

# What the project needs.  (postgresql-contrib-15 is part of postgresql-15
# on Debian 12, so it is not listed separately.)
PACKAGES=(
    postgresql-15               # server + contrib modules + initdb/pg_ctl
    postgresql-server-dev-15    # pg_config, PGXS, pg_regress, pg_isolation_regress, TAP perl modules
    libsodium-dev               # crypto used by the extension
    postgresql-15-pgtap         # pgTAP, loaded by the pg_regress tests
    libipc-run-perl             # IPC::Run, needed by PostgreSQL::Test::Cluster (TAP tests)
    pkg-config                  # the Makefile asks it for libsodium's flags
    make
    gcc
    valgrind                    # the C unit tests run under memcheck (test/unit/run.sh)
    clang                       # libFuzzer harnesses (make fuzz, test/fuzz/)
    libclang-rt-14-dev          # libFuzzer and the sanitizer runtimes for clang 14
    pgbouncer                   # the transaction-pooler test (test/extra/pooler.sh)
    chromium                    # the client's browser test (test/extra/client_browser.sh), driven by playwright-core
)

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
