#!/usr/bin/env bash
# scripts/fuzz.sh — libFuzzer harnesses of the pure-C core (`make fuzz`;
# make test runs it too).
#
#   bash scripts/fuzz.sh [TARGET...]      targets: patch envelope webhook keyfile
#
# Each harness (test/fuzz/fuzz_TARGET.c) is built with clang and
# -fsanitize=fuzzer,address,undefined (every UBSan report is fatal), first
# replays its seed corpus (test/fuzz/corpus/TARGET/, kept in the repository),
# then fuzzes for FUZZ_SECONDS.  A crash, a broken promise (the harness
# aborts), a sanitizer report, a timeout or running out of memory fails the
# run; the input that did it is kept under tmp_check/fuzz/ and printed in
# hex, so it can be replayed with  tmp_check/fuzz/bin/fuzz_TARGET FILE.
#
# Knobs:
#   FUZZ_SECONDS   seconds per harness (default 60).  Longer runs:
#                  FUZZ_SECONDS=3600 make fuzz
#   FUZZ_JOBS      harnesses run at once (default: the number of CPUs, max 4)
#   FUZZ_KEEP=1    add what the run found to the seed corpus (then commit
#                  the new files that matter; libFuzzer's -merge keeps it
#                  minimal)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SECONDS_EACH=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
(( JOBS > 4 )) && JOBS=4
(( JOBS < 1 )) && JOBS=1
ALL=(patch envelope webhook keyfile)
TARGETS=("$@")
[[ ${#TARGETS[@]} -eq 0 ]] && TARGETS=("${ALL[@]}")

sources_of() {
    case "$1" in
        patch)    echo src/core/fields_core.c ;;
        envelope) echo src/core/envelope.c src/core/keyfile.c ;;
        webhook)  echo src/core/webhook_core.c ;;
        keyfile)  echo src/core/keyfile.c src/core/envelope.c ;;
        *) echo "fuzz: unknown target '$1' (known: ${ALL[*]})" >&2; return 1 ;;
    esac
}

CC=${FUZZ_CC:-clang}
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "fuzz: $CC not found (Debian: apt-get install clang and the libclang-rt-NN-dev of its version; or: make deps)" >&2
    exit 1
fi

OUT=$ROOT/tmp_check/fuzz
rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/artifacts"
sodium_cflags=$(pkg-config --cflags libsodium 2>/dev/null || true)
sodium_libs=$(pkg-config --libs libsodium 2>/dev/null || echo -lsodium)

echo "fuzz: building ${TARGETS[*]} with $("$CC" --version | head -1)"
for t in "${TARGETS[@]}"; do
    srcs=$(sources_of "$t")
    # shellcheck disable=SC2086   # word lists
    "$CC" -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Werror \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        -Isrc/core -Itest/unit $sodium_cflags -o "$OUT/bin/fuzz_$t" \
        "test/fuzz/fuzz_$t.c" $srcs $sodium_libs
done

# run_one TARGET: replay the seeds, then fuzz; exit status of libFuzzer
run_one() {
    local t=$1 work=$OUT/corpus_$t
    mkdir -p "$work"
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
    "$OUT/bin/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=10 \
        -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
        -artifact_prefix="$OUT/artifacts/$t-" \
        "$work" "test/fuzz/corpus/$t" >"$OUT/$t.log" 2>&1
}

echo "fuzz: ${SECONDS_EACH}s per harness, $JOBS at a time"
declare -A pid_of=()
declare -A rc_of=()
running=0
for t in "${TARGETS[@]}"; do
    run_one "$t" &
    pid_of[$t]=$!
    running=$((running + 1))
    if (( running >= JOBS )); then
        wait -n || true
        running=$((running - 1))
    fi
done
for t in "${TARGETS[@]}"; do
    if wait "${pid_of[$t]}"; then rc_of[$t]=0; else rc_of[$t]=$?; fi
done

failed=0
printf '\n%-10s %-6s %12s %10s %8s %s\n' target result executions exec/s corpus seeds
for t in "${TARGETS[@]}"; do
    log=$OUT/$t.log
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    corpus=$(find "$OUT/corpus_$t" -type f | wc -l)
    seeds=$(find "test/fuzz/corpus/$t" -type f | wc -l)
    result=ok
    if [[ ${rc_of[$t]} -ne 0 ]] || grep -qE 'ERROR: (libFuzzer|AddressSanitizer|UndefinedBehaviorSanitizer)|runtime error:' "$log"; then
        result=FAILED
        failed=1
    fi
    printf '%-10s %-6s %12s %10s %8s %s\n' "$t" "$result" "${execs:-?}" "${rate:-?}" "$corpus" "$seeds"
done

if (( failed )); then
    for t in "${TARGETS[@]}"; do
        [[ ${rc_of[$t]} -eq 0 ]] && continue
        echo
        echo "---- fuzz_$t (exit ${rc_of[$t]}): the end of its log"
        tail -40 "$OUT/$t.log"
        for a in "$OUT"/artifacts/"$t"-*; do
            [[ -e "$a" ]] || continue
            echo "---- input: $a (replay: $OUT/bin/fuzz_$t $a)"
            od -An -tx1 -v "$a" | head -20
        done
    done
    echo "fuzz: FAILED"
    exit 1
fi

if [[ "${FUZZ_KEEP:-0}" == 1 ]]; then
    for t in "${TARGETS[@]}"; do
        "$OUT/bin/fuzz_$t" -merge=1 "test/fuzz/corpus/$t" "$OUT/corpus_$t" >>"$OUT/$t.log" 2>&1
    done
    echo "fuzz: merged new inputs into test/fuzz/corpus/ (review, then commit)"
fi
echo "fuzz: ok (${#TARGETS[@]} harnesses, ${SECONDS_EACH}s each)"
