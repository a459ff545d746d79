#!/usr/bin/env bash
# scripts/test.sh — the one test command (`make test`, and CI via .ci/run).
#
#   1. installs missing Debian packages        (scripts/deps.sh)
#   2. builds from clean; any compiler warning is a failure; installs
#   3. starts a throwaway cluster                (scripts/cluster.sh)
#   4. pg_regress suite      test/sql/*.sql    (expected: test/expected/)
#   5. isolation suite       test/specs/*.spec (expected: test/expected/)
#   6. shell tests           test/extra/*.sh   (executable ones; exit 0 = pass,
#                                              77 = skipped, with the reason)
#   7. TAP tests             test/t/*.pl       (prove, own clusters)
#   8. libFuzzer harnesses   test/fuzz/*.c     (scripts/fuzz.sh, as make fuzz)
#   9. prints diffs + server log on failure, then a summary whose very last
#      line is "N passed, N failed".  Exit status 1 if anything failed.
#
# Logs of every step are kept in tmp_check/harness/ (removed by make clean).
#
# Knobs (environment):
#   PG                    PostgreSQL major to test (make test PG=17; see
#                         scripts/majors.sh).  Unset: pg_config's.  A major
#                         that this Debian release does not ship runs in a
#                         debootstrap root of the release that does
#                         (scripts/pgroot.sh runs this script in it).
#   PG_CONFIG             pg_config to use (default: pg_config, or with PG
#                         set, /usr/lib/postgresql/$PG/bin/pg_config)
#   ROASTR_LOGDIR         where the logs go (default tmp_check/harness)
#   EXTRA_REGRESS_OPTS    extra pg_regress/pg_isolation_regress switches,
#                         as in PGXS
#   PROVE_FLAGS           extra prove switches, e.g. --verbose
#   ROASTR_EXTRA_TIMEOUT  seconds one test/extra script may run (default 900)
#   ROASTR_PRELOAD        see scripts/cluster.sh
#   ROASTR_FUZZ_SECONDS   seconds per fuzz harness (default 60; 0 skips fuzzing)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if [[ -n "${PG:-}" ]]; then
    # shellcheck source=scripts/majors.sh
    source scripts/majors.sh
    if ! roastr_check_major "$PG"; then
        echo "0 passed, 1 failed"
        exit 1
    fi
    if [[ "$(roastr_system_suite)" != "$(roastr_suite_of "$PG")" ]]; then
        exec bash scripts/pgroot.sh test "$PG"
    fi
    export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG/bin/pg_config}
    # the test scripts' own pg_config, psql, pg_ctl … are that major's too
    export PATH=/usr/lib/postgresql/$PG/bin:$PATH
fi
export PG_CONFIG=${PG_CONFIG:-pg_config}
LOGDIR=${ROASTR_LOGDIR:-$ROOT/tmp_check/harness}
EXTRA_TIMEOUT=${ROASTR_EXTRA_TIMEOUT:-900}

passed=0
failed=0
failures=()          # what failed, for the summary
diff_files=()        # regression.diffs copies to show on failure
tap_tmp=""           # temp copy of the tree for the TAP tests

note_pass() { passed=$((passed + ${1:-1})); }
note_fail() { failed=$((failed + ${2:-1})); failures+=("$1"); }

section() { printf '\n==== %s ====\n' "$*"; }

# Runs on every exit path: stop the cluster, drop temp dirs.  Prints nothing,
# so the summary stays the last line of output.
cleanup() {
    trap '' INT TERM HUP        # a second Ctrl-C must not cut cleanup short
    if declare -F cluster_stop >/dev/null; then
        cluster_stop >/dev/null 2>&1 || true
    fi
    if [[ -n "$tap_tmp" ]]; then
        rm -rf "$tap_tmp"
    fi
}
trap cleanup EXIT
# Turn signals into a normal exit so the EXIT trap (cleanup) runs.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Print the summary; the last line is exactly "N passed, N failed".
finish() {
    local f
    section "summary"
    if [[ ${#failures[@]} -gt 0 ]]; then
        echo "failed:"
        for f in "${failures[@]}"; do
            echo "  - $f"
        done
    fi
    echo "logs: $LOGDIR"
    cleanup
    trap - EXIT
    echo "$passed passed, $failed failed"
    if [[ $failed -gt 0 ]]; then
        exit 1
    fi
    exit 0
}

# Run "$@" with output both shown and saved to the file $LOG; sets $rc to
# the command's exit status without tripping set -e.
LOG=""
rc=0
run_logged() {
    set +e
    "$@" </dev/null 2>&1 | tee "$LOG"
    rc=${PIPESTATUS[0]}
    set -e
    # 130 = the command died of (or exited on) Ctrl-C; stop the whole run.
    # (A child that catches SIGINT and exits, like timeout, hides the signal
    # from bash, so the INT trap alone would not fire.)
    if [[ $rc -eq 130 ]]; then
        echo "interrupted" >&2
        exit 130
    fi
}

# -------------------------------------------------------------- 1. deps
section "dependencies"
if ! bash scripts/deps.sh; then
    note_fail "dependencies (scripts/deps.sh)"
    finish
fi

# -------------------------------------------------------------- 2. build
section "build"
PGXS_MK=$("$PG_CONFIG" --pgxs)
PGXS_TOP=$(cd "$(dirname "$PGXS_MK")/../.." && pwd)     # PGXS's $(top_builddir)
BINDIR=$("$PG_CONFIG" --bindir)
PG_REGRESS=$PGXS_TOP/src/test/regress/pg_regress
PG_ISOLATION_REGRESS=$PGXS_TOP/src/test/isolation/pg_isolation_regress
MAKE=(make --no-print-directory)

# Print a Makefile variable's final value, as PGXS computed it (so e.g.
# REGRESS_OPTS includes the --dbname=contrib_regression pgxs.mk appends).
# The Makefile is not modified: a second makefile supplies the print rule.
make_var() {
    "${MAKE[@]}" -s -f Makefile -f - __harness_print HARNESS_VAR="$1" <<'MK'
.PHONY: __harness_print
__harness_print: ; $(info $($(HARNESS_VAR)))@:
MK
}

# Start from clean so every file is compiled and every warning is seen.
"${MAKE[@]}" -s clean >/dev/null 2>&1 || true
mkdir -p "$LOGDIR"

LOG=$LOGDIR/build.log
run_logged "${MAKE[@]}"
if [[ $rc -ne 0 ]]; then
    note_fail "build (make exited $rc; see $LOG)"
    finish
fi
if grep -q 'warning:' "$LOG"; then
    echo "build: compiler warnings are errors here:"
    grep 'warning:' "$LOG" | sed 's/^/  /'
    note_fail "build (compiler warnings; see $LOG)"
    finish
fi

# make install writes into PostgreSQL's own directories: fine as root; a
# non-root user needs write access there, or passwordless sudo.
LOG=$LOGDIR/install.log
pkglibdir=$("$PG_CONFIG" --pkglibdir)
sharedir=$("$PG_CONFIG" --sharedir)
# True when every file make install would copy is already installed as built
# (lets a non-root user run the tests after a root ran "make install").
installed_up_to_date() {
    local f ext=() data=() libs=()
    read -r -a ext <<<"$(make_var EXTENSION)"
    read -r -a data <<<"$(make_var DATA)"
    read -r -a libs <<<"$(make_var MODULE_big) $(make_var MODULES)"
    for f in "${ext[@]}"; do
        cmp -s "$f.control" "$sharedir/extension/$f.control" || return 1
    done
    for f in "${data[@]}"; do
        cmp -s "$f" "$sharedir/extension/${f##*/}" || return 1
    done
    for f in "${libs[@]}"; do
        cmp -s "$f.so" "$pkglibdir/$f.so" || return 1
    done
    return 0
}
if [[ $(id -u) -eq 0 ]] || { [[ -w "$pkglibdir" ]] && [[ -w "$sharedir/extension" ]]; }; then
    run_logged "${MAKE[@]}" -s install
elif installed_up_to_date; then
    echo "install: not root, but the installed files already match this build; skipped" | tee "$LOG"
    rc=0
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    run_logged sudo -n "${MAKE[@]}" -s install PG_CONFIG="$PG_CONFIG"
else
    echo "install: $pkglibdir and $sharedir/extension are not writable by $(id -un)," \
         "passwordless sudo is not available, and the installed files differ from this build:" \
         "run as root, or have root run 'make install' here first." | tee "$LOG"
    rc=1
fi
if [[ $rc -ne 0 ]]; then
    note_fail "make install (see $LOG)"
    finish
fi
echo "build: ok (no warnings), installed"

# -------------------------------------------------------------- 3. cluster
section "cluster"
# shellcheck source=scripts/cluster.sh
source scripts/cluster.sh
# (cleanup(), already trapped on EXIT, calls cluster_stop.)
# A fixed system identifier: patch answers and notification payloads carry
# the history token "<system identifier>.<timeline>", and the suites print
# them verbatim (expected/*.out show 7320000000000000001.1).  Only this
# cluster: the shell tests start their own, with initdb's.
# shellcheck disable=SC2119   # no extra postgresql.conf lines for the tests
if ! ROASTR_SYSID=7320000000000000001 cluster_start; then
    note_fail "cluster start (see messages above)"
    finish
fi
echo "cluster: running, PGHOST=$PGHOST PGPORT=$PGPORT, log $(cluster_log)"

# ------------------------------------------------- 4./5. pg_regress suites

# Sorted basenames of files matching a glob, one per line ("" if none).
list_tests() {     # list_tests DIR SUFFIX
    local f
    for f in "$1"/*"$2"; do
        [[ -e "$f" ]] || continue
        f=${f##*/}
        echo "${f%"$2"}"
    done | LC_ALL=C sort
}

# Count a pg_regress log's per-test result lines.  Understands the PG 15
# format ("test foo ... ok  12 ms", "     foo ... FAILED", "failed (ignored)")
# and the TAP-like one of PG 16+ ("ok 1 - foo", "not ok 2 - bar").
count_ok()     { grep -Ec '^(test )? *[^ ]+ +\.\.\. +(ok|failed \(ignored\))( |$)|^ok [0-9]+ ' "$1" || true; }
count_failed() { grep -Ec '^(test )? *[^ ]+ +\.\.\. +FAILED|^not ok [0-9]+ ' "$1" || true; }

# Where a pg_regress run writes regression.diffs: the last --outputdir wins.
output_dir() {
    local dir=. arg
    for arg in "$@"; do
        case "$arg" in --outputdir=*) dir=${arg#--outputdir=} ;; esac
    done
    echo "$dir"
}

# run_suite LABEL DRIVER DEFAULT_OPTS_VAR MAKE_OPTS_VAR TESTS...
#   Reproduces PGXS's installcheck command line for one suite:
#     DRIVER --inputdir=. [PGXS defaults] --bindir=BINDIR $EXTRA_REGRESS_OPTS
#            $(XXX_OPTS) tests...
run_suite() {
    local label=$1 driver=$2; shift 2
    local -a pgxs_defaults=() opts=() extra=() tests=()
    read -r -a pgxs_defaults <<<"$1"
    read -r -a opts <<<"$2"
    shift 2
    tests=("$@")
    read -r -a extra <<<"${EXTRA_REGRESS_OPTS:-}"

    local -a cmd=("$driver" --inputdir=. "${pgxs_defaults[@]}" --bindir="$BINDIR"
                  "${extra[@]}" "${opts[@]}" "${tests[@]}")
    local outdir ok bad missing
    outdir=$(output_dir "${cmd[@]}")
    rm -f "$outdir/regression.diffs"

    section "$label (${#tests[@]} tests)"
    echo "+ ${cmd[*]}"
    LOG=$LOGDIR/$label.log
    run_logged "${cmd[@]}"

    ok=$(count_ok "$LOG")
    bad=$(count_failed "$LOG")
    note_pass "$ok"
    if [[ $bad -gt 0 ]]; then
        note_fail "$label: $bad test(s) FAILED" "$bad"
    fi
    # Tests that printed no result line at all (driver died mid-way).
    missing=$(( ${#tests[@]} - ok - bad ))
    if [[ $missing -gt 0 ]]; then
        note_fail "$label: $missing test(s) produced no result (driver exit $rc; see $LOG)" "$missing"
    elif [[ $rc -ne 0 && $bad -eq 0 ]]; then
        note_fail "$label: driver exited $rc without a FAILED test (see $LOG)"
    fi
    # The next suite may write to the same place: keep a copy of the diffs.
    if [[ -s "$outdir/regression.diffs" ]]; then
        cp "$outdir/regression.diffs" "$LOGDIR/$label.diffs"
        diff_files+=("$LOGDIR/$label.diffs")
    fi
}

mapfile -t REGRESS_TESTS < <(list_tests test/sql .sql)
mapfile -t ISOLATION_TESTS < <(list_tests test/specs .spec)

if [[ ${#REGRESS_TESTS[@]} -gt 0 ]]; then
    if suite_opts=$(make_var REGRESS_OPTS); then
        run_suite regress "$PG_REGRESS" "" "$suite_opts" "${REGRESS_TESTS[@]}"
    else
        note_fail "regress: could not read REGRESS_OPTS from the Makefile"
    fi
else
    section "regress: no tests in test/sql, skipped"
fi

if [[ ${#ISOLATION_TESTS[@]} -gt 0 ]]; then
    if suite_opts=$(make_var ISOLATION_OPTS); then
        # PGXS puts --outputdir=output_iso before ISOLATION_OPTS.
        run_suite isolation "$PG_ISOLATION_REGRESS" "--outputdir=output_iso" "$suite_opts" "${ISOLATION_TESTS[@]}"
    else
        note_fail "isolation: could not read ISOLATION_OPTS from the Makefile"
    fi
else
    section "isolation: no specs in test/specs, skipped"
fi

# -------------------------------------------------------- 6. shell tests
if [[ -d test/extra ]]; then
    mapfile -t EXTRA_TESTS < <(list_tests test/extra .sh)
    section "extra shell tests (${#EXTRA_TESTS[@]} files)"
    for name in "${EXTRA_TESTS[@]}"; do
        script=test/extra/$name.sh
        if [[ ! -x "$script" ]]; then
            echo "extra: $script is not executable, skipped (chmod +x it to run it)"
            continue
        fi
        echo "---- $script"
        LOG=$LOGDIR/extra_$name.log
        # --foreground keeps the script in our process group, so Ctrl-C reaches it.
        run_logged timeout --foreground --kill-after=10 "$EXTRA_TIMEOUT" "$script"
        if [[ $rc -eq 0 ]]; then
            printf 'test %-30s ... ok\n' "$name"
            note_pass
        elif [[ $rc -eq 77 ]]; then
            # (automake's convention: the script says why on its last line)
            printf 'test %-30s ... skipped: %s\n' "$name" "$(tail -n 1 "$LOG" | sed 's/^[^:]*: skipped: //')"
        else
            if [[ $rc -eq 124 ]]; then
                echo "extra: $script timed out after ${EXTRA_TIMEOUT}s"
            fi
            printf 'test %-30s ... FAILED (exit %s)\n' "$name" "$rc"
            note_fail "extra: $name (exit $rc; see $LOG)"
        fi
    done
fi

# ------------------------------------------------------------ 7. TAP tests
# Run "$@" in the TAP copy of the tree, as the user owning that copy.
# shellcheck disable=SC2317   # called indirectly, through run_logged
run_as_tap_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        (cd "$tap_tmp" && runuser -u "$tap_owner" -- "$@")
    else
        (cd "$tap_tmp" && "$@")
    fi
}
mapfile -t TAP_TESTS < <(list_tests test/t .pl)
if [[ ${#TAP_TESTS[@]} -gt 0 ]]; then
    section "TAP tests (${#TAP_TESTS[@]} files)"
    # PostgreSQL::Test::Cluster runs initdb itself, which refuses root: run
    # prove as the cluster's OS user in a copy of the tree that user owns.
    tap_owner=$(id -un)
    if [[ $(id -u) -eq 0 ]]; then
        tap_owner=postgres
    fi
    tap_tmp=$(mktemp -d /tmp/roastr_tap.XXXXXX)
    tar -C "$ROOT" --exclude=./.git --exclude=./tmp_check --exclude=./results \
        --exclude=./output_iso -cf - . | tar -C "$tap_tmp" -xf -
    mkdir -p "$tap_tmp/tmp_check"
    if [[ $(id -u) -eq 0 ]]; then
        chown -R "$tap_owner": "$tap_tmp"
    fi

    tap_files=()
    for name in "${TAP_TESTS[@]}"; do tap_files+=("test/t/$name.pl"); done
    read -r -a prove_flags <<<"${PROVE_FLAGS:-}"

    # The environment PGXS's prove_installcheck gives prove (Makefile.global,
    # PGXS branch): TESTDIR (up to 15; our RoastrNode.pm reads it too), or
    # TESTDATADIR and TESTLOGDIR (16 on: without them a node's directories
    # are relative paths, which the server, running in its data directory,
    # resolves elsewhere), PATH, PGPORT, PG_REGRESS.  Each major ignores the
    # other's.  (top_builddir and REGRESS_SHLIB are only set for in-tree
    # builds; setting top_builddir here would put Cluster.pm's port lock dir
    # inside PGXS, unwritable.)
    tap_cmd=(env TESTDIR="$tap_tmp" TESTDATADIR="$tap_tmp/tmp_check" TESTLOGDIR="$tap_tmp/tmp_check/log"
             PATH="$BINDIR:$tap_tmp:$PATH" PGPORT=65432
             PG_REGRESS="$PG_REGRESS"
             prove -I "$PGXS_TOP/src/test/perl/" -I test/t "${prove_flags[@]}" "${tap_files[@]}")
    LOG=$LOGDIR/tap.log
    run_logged run_as_tap_owner "${tap_cmd[@]}"

    # One test per .pl file: it passed if prove's per-file line says ok
    # (or skipped), e.g. "test/t/001_basic.pl .. ok".
    tap_bad=0
    for f in "${tap_files[@]}"; do
        # shellcheck disable=SC2016   # the $ in the sed expression is literal
        re=$(printf '%s' "$f" | sed 's/[][\.*^$(){}+?|]/\\&/g')
        if grep -Eq "^$re \.+ (ok|skipped)" "$LOG"; then
            note_pass
        else
            tap_bad=$((tap_bad + 1))
            note_fail "tap: $f"
            # Keep the test's own log (its clusters' logs are in the same dir).
            name=$(basename "$f" .pl)
            if [[ -f "$tap_tmp/tmp_check/log/regress_log_$name" ]]; then
                cp "$tap_tmp/tmp_check/log/regress_log_$name" "$LOGDIR/tap_regress_log_$name"
            fi
        fi
    done
    if [[ $rc -ne 0 && $tap_bad -eq 0 ]]; then
        note_fail "tap: prove exited $rc but every file looked ok (see $LOG)"
    fi
    # Keep all TAP logs for inspection; the copy itself is deleted on exit.
    if [[ -d "$tap_tmp/tmp_check/log" ]]; then
        mkdir -p "$LOGDIR/tap_logs"
        cp -r "$tap_tmp/tmp_check/log/." "$LOGDIR/tap_logs/" 2>/dev/null || true
    fi
fi

# ------------------------------------------------------------ 8. fuzzing
FUZZ_SECONDS_EACH=${ROASTR_FUZZ_SECONDS:-60}
if [[ "$FUZZ_SECONDS_EACH" != 0 && -d test/fuzz ]]; then
    section "fuzz (${FUZZ_SECONDS_EACH}s per harness)"
    LOG=$LOGDIR/fuzz.log
    run_logged env FUZZ_SECONDS="$FUZZ_SECONDS_EACH" bash scripts/fuzz.sh
    # one test per harness: its line in fuzz.sh's table
    fuzz_ok=$(grep -cE '^[a-z]+ +ok +[0-9]' "$LOG" || true)
    fuzz_bad=$(grep -cE '^[a-z]+ +FAILED +' "$LOG" || true)
    note_pass "$fuzz_ok"
    if [[ $fuzz_bad -gt 0 ]]; then
        note_fail "fuzz: $fuzz_bad harness(es) failed (see $LOG)" "$fuzz_bad"
    elif [[ $rc -ne 0 ]]; then
        note_fail "fuzz: scripts/fuzz.sh exited $rc (see $LOG)"
    fi
fi

# ------------------------------------------------------ 9. failure details
if [[ $failed -gt 0 ]]; then
    for f in "${diff_files[@]}"; do
        section "diffs: $f"
        cat "$f"
    done
    for f in "$LOGDIR"/tap_regress_log_*; do
        [[ -e "$f" ]] || continue
        section "last 50 lines of $f"
        tail -n 50 "$f"
    done
    section "last 50 lines of the server log ($(cluster_log))"
    tail -n 50 "$(cluster_log)" 2>/dev/null || echo "(no server log)"
    cp "$(cluster_log)" "$LOGDIR/server.log" 2>/dev/null || true
fi

cluster_stop
finish
