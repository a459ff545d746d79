#!/usr/bin/env bash
# shellcheck disable=SC2317   # cleanup, on_exit, on_signal run through traps
# scripts/pgroot.sh — test against a PostgreSQL major that this machine's
# Debian release does not ship (17 on Debian 12), inside a cached Debian root
# of the release that ships it (trixie), made with debootstrap from Debian's
# own packages.  `make test PG=17` calls it through scripts/test.sh.
#
#   bash scripts/pgroot.sh test MAJOR         scripts/test.sh for MAJOR, in the root
#   bash scripts/pgroot.sh prepare MAJOR      only build (or update) the root
#   bash scripts/pgroot.sh run MAJOR CMD...   CMD in a copy of the source in the root
#
# Needs root (debootstrap, mount, chroot); installs debootstrap if missing.
#
# The root.  $ROASTR_ROOT_CACHE/<suite>-pg<major>, by default
# /var/cache/roastr_state/trixie-pg17: outside the clone, so every clone on
# the machine (CI's fresh one too) reuses it.  It is built in a temporary
# directory beside it and renamed into place only when complete, so an
# interrupted build never leaves a root that is taken as ready (the next run
# deletes the leftover).  Its file /etc/roastr_state-root records what it was
# built from (suite, mirrors) and the packages it holds: `scripts/deps.sh
# --list` for the major plus BASE_PACKAGES below.  When that list changes,
# the missing packages are installed into it and the record is rewritten
# last; when the suite or a mirror changes, it is rebuilt.  To clear it
# (when no run is going on):  rm -rf --one-file-system /var/cache/roastr_state
#
# A run.  The script runs in a mount namespace of its own (unshare, private
# propagation): proc, sys, dev, dev/pts, dev/shm and the log directory are
# mounted there only, never in the host's mount table.  The EXIT trap
# unmounts them on every exit path (success, failure, INT, TERM, HUP), and
# they could not outlive the namespace's last process anyway.  The source is
# copied (without .git, build output and node_modules) into a scratch
# directory in the root, so the worktree is not written to, and the host
# suite may run in it meanwhile; for `test`, tmp_check/pg<major>/ of the
# worktree is bind-mounted at the same path inside the root and holds the
# suite's logs (ROASTR_LOGDIR), so the paths it prints are right on the host.
# DNS (/etc/resolv.conf) and the CA bundle (for npm) come from the host.
# One run per root at a time (flock); another one waits.
#
# Signals: INT, TERM and HUP are passed on (as TERM) to the command's process
# group, which cleans up after itself (scripts/test.sh stops its cluster);
# then whatever still runs in the root is ended, and everything unmounted.
#
# Knobs:
#   ROASTR_ROOT_CACHE       where roots are kept (default /var/cache/roastr_state)
#   ROASTR_MIRROR           Debian mirror (default http://deb.debian.org/debian)
#   ROASTR_SECURITY_MIRROR  (default http://deb.debian.org/debian-security)
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/majors.sh
source "$SRC/scripts/majors.sh"

usage() {
    echo "usage: bash scripts/pgroot.sh test MAJOR | prepare MAJOR | run MAJOR CMD..." >&2
    exit 2
}
[[ $# -ge 2 ]] || usage
ACTION=$1
MAJOR=$2
shift 2
case "$ACTION" in
    test | prepare) [[ $# -eq 0 ]] || usage ;;
    run) [[ $# -gt 0 ]] || usage ;;
    *) usage ;;
esac
roastr_check_major "$MAJOR" || exit 2

log() { echo "pgroot: $*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
    log "needs root (debootstrap, mount, chroot); run as root"
    exit 1
fi

# ------------------------------------------------ our own mount namespace
# exec keeps the PID, so the marker tells the re-executed script apart from
# a fresh call (a nested call has another PID).
if [[ "${_ROASTR_PGROOT_NS:-}" != "$$" ]]; then
    export _ROASTR_PGROOT_NS=$$
    exec unshare --mount --propagation private -- bash "${BASH_SOURCE[0]}" "$ACTION" "$MAJOR" "$@"
fi

SUITE=$(roastr_suite_of "$MAJOR")
CACHE=${ROASTR_ROOT_CACHE:-/var/cache/roastr_state}
MIRROR=${ROASTR_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${ROASTR_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
NAME=$SUITE-pg$MAJOR
RECORD=/etc/roastr_state-root               # inside the root
HOST_CA=/etc/ssl/certs/ca-certificates.crt
ROOT_CA=/usr/local/share/roastr_state/host-ca.crt   # inside the root
# What a minbase root lacks that the suite takes for granted on a host:
# TLS roots (npm fetches over https).
BASE_PACKAGES=(ca-certificates)

mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd -P)
ROOTFS=$CACHE/$NAME

# State the EXIT trap undoes.
MOUNTED=()          # mount points, in the order they were mounted
BUILDING=""         # a root being built (removed if not renamed into place)
WORK=""             # scratch copy of the source inside the root
WORK_OLD=""         # the older major staged inside the root (stage_old_major)
LOG_MOUNT=""        # the log directory's mount point inside the root
LOG_KEEP=""         # its deepest ancestor that existed before: never removed
CHILD=""            # the command's PID (and process group)
STARTED=""          # set once the command was started
SIGNALLED=""        # exit status a signal asked for

# ------------------------------------------------------------- helpers

# mount_at TARGET MOUNT-ARGS...: mount and remember it for unmount_all.
mount_at() {
    local target=$1
    shift
    mkdir -p "$target"
    mount "$@" "$target"
    MOUNTED+=("$target")
}

# Unmount everything we mounted, last first.  Returns 1 if anything stays.
unmount_all() {
    local i t status=0
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        t=${MOUNTED[i]}
        if ! umount "$t" 2>/dev/null; then
            # busy: detach it now, the kernel finishes when it is unused
            umount -l "$t" 2>/dev/null || { log "could not unmount $t"; status=1; }
        fi
    done
    MOUNTED=()
    return "$status"
}

# The kernel file systems and devices a root needs, mounted in $1.
mount_root() {
    local r=$1
    mount_at "$r/proc" -t proc -o nosuid,nodev,noexec proc
    mount_at "$r/sys" -t sysfs -o ro,nosuid,nodev,noexec sysfs
    mount_at "$r/dev" --bind /dev
    mount_at "$r/dev/pts" --bind /dev/pts
    # PostgreSQL's dynamic shared memory lives in /dev/shm: a fresh tmpfs,
    # not the host's
    mount_at "$r/dev/shm" -t tmpfs -o nosuid,nodev,mode=1777 shm
    # network settings of the host: DNS for npm and apt, its CA bundle
    rm -f "$r/etc/resolv.conf"
    cp /etc/resolv.conf "$r/etc/resolv.conf"
    if [[ -r $HOST_CA ]]; then
        mkdir -p "$(dirname "$r$ROOT_CA")"
        cp "$HOST_CA" "$r$ROOT_CA"
    fi
}

# True if anything is mounted at or below directory $1.
has_mounts_below() {
    local t
    while read -r t; do
        if [[ "$t" == "$1" || "$t" == "$1"/* ]]; then
            return 0
        fi
    done < <(findmnt -rn -o TARGET)
    return 1
}

# rm -rf a root or scratch directory, never through a mount point.
remove_tree() {
    if has_mounts_below "$1"; then
        log "not removing $1: something is mounted below it"
        return 1
    fi
    rm -rf --one-file-system -- "$1"
}

# PIDs of processes running in root $1 in this mount namespace: ours, since
# we hold the root's lock and the namespace is ours.
root_pids() {
    local p ns
    ns=$(readlink /proc/self/ns/mnt)
    for p in /proc/[0-9]*; do
        [[ "$(readlink "$p/root" 2>/dev/null)" == "$1" ]] || continue
        [[ "$(readlink "$p/ns/mnt" 2>/dev/null)" == "$ns" ]] || continue
        echo "${p#/proc/}"
    done
}

# End what is left running in root $1 (e.g. a server of an interrupted
# test): TERM, up to 10 s, then KILL.
end_root_processes() {
    local pids i
    pids=$(root_pids "$1")
    [[ -n "$pids" ]] || return 0
    log "ending processes left in the root: ${pids//$'\n'/ }"
    # shellcheck disable=SC2086   # a list of PIDs
    kill -TERM $pids 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        [[ -n "$(root_pids "$1")" ]] || return 0
        sleep 0.1
    done
    pids=$(root_pids "$1")
    # shellcheck disable=SC2086
    [[ -z "$pids" ]] || kill -KILL $pids 2>/dev/null || true
    sleep 0.5
}

# The record a root for this major should carry.
wanted_record() {
    echo "roastr_state debootstrap root, format 1"
    echo "suite $SUITE"
    echo "mirror $MIRROR"
    echo "security-mirror $SECURITY_MIRROR"
    {
        PG=$MAJOR bash "$SRC/scripts/deps.sh" --list
        printf '%s\n' "${BASE_PACKAGES[@]}"
    } | LC_ALL=C sort -u | sed 's/^/package /'
}

# Run a long step (debootstrap, apt-get, the command) in the background, in
# a process group of its own, and wait for it: bash runs a trap only once
# the foreground command has ended, so a step in the foreground would hold
# a signal back until it is done; this way on_signal acts at once and its
# TERM reaches all of the step.  Exits if a signal came; else returns the
# step's status.  fd 9 (the lock) is not passed on, so nothing left behind
# can hold it.
run_step() {
    local rc
    setsid "$@" 9>&- &
    CHILD=$!
    while :; do
        rc=0
        wait "$CHILD" || rc=$?
        # a trapped signal ends wait early: go on waiting while it runs
        kill -0 "$CHILD" 2>/dev/null || break
    done
    CHILD=""
    if [[ -n "$SIGNALLED" ]]; then
        exit "$SIGNALLED"
    fi
    return "$rc"
}

# chroot into $1 with a clean environment (a step: see run_step).
in_root() {
    local r=$1
    shift
    run_step chroot "$r" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

# Install the wanted packages into root $1 (output to $2); mounts for the
# time it takes.
install_packages() {
    local r=$1 out=$2 rc=0
    local -a pkgs
    mapfile -t pkgs < <(wanted_record | sed -n 's/^package //p')
    mount_root "$r"
    # (dpkg --configure -a: an update cut short leaves dpkg unfinished)
    {
        in_root "$r" dpkg --configure -a &&
            in_root "$r" apt-get update -q &&
            in_root "$r" apt-get install -y -q "${pkgs[@]}"
    } >>"$out" 2>&1 || rc=$?
    end_root_processes "$r"
    unmount_all || rc=1
    if [[ $rc -ne 0 ]]; then
        log "installing packages into $r failed; the end of $out:"
        tail -n 30 "$out" >&2
    fi
    return "$rc"
}

# Settings a fresh root gets before any package is installed.
configure_root() {
    local r=$1
    cat >"$r/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
    cat >"$r/etc/apt/apt.conf.d/90roastr_state" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF
    # no service starts inside the root (postgresql-common's postinst would)
    printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
    chmod 755 "$r/usr/sbin/policy-rc.d"
    # and no default cluster: the tests make their own
    mkdir -p "$r/etc/postgresql-common/createcluster.d"
    echo "create_main_cluster = false" >"$r/etc/postgresql-common/createcluster.d/roastr_state.conf"
}

# Build the root from scratch, atomically.
build_root() {
    local old out=$CACHE/$NAME.build.log
    # leftovers of an interrupted build or swap: nothing is mounted in them
    # (mounts live only in the namespaces of runs), and we hold the lock
    for old in "$CACHE/.$NAME.tmp."* "$CACHE/.$NAME.old."*; do
        if [[ -e "$old" ]]; then
            remove_tree "$old"
        fi
    done
    if ! command -v debootstrap >/dev/null 2>&1; then
        log "installing debootstrap"
        { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; } >"$out" 2>&1 \
            || { tail -n 30 "$out" >&2; log "could not install debootstrap"; return 1; }
    fi
    BUILDING=$(mktemp -d "$CACHE/.$NAME.tmp.XXXXXX")
    chmod 755 "$BUILDING"
    log "building $ROOTFS (debootstrap $SUITE, then PostgreSQL $MAJOR and the test tools; once, a few minutes; log $out)"
    if ! run_step debootstrap --variant=minbase --components=main "$SUITE" "$BUILDING" "$MIRROR" >"$out" 2>&1; then
        log "debootstrap failed; the end of $out:"
        tail -n 30 "$out" >&2
        return 1
    fi
    configure_root "$BUILDING"
    install_packages "$BUILDING" "$out" || return 1
    in_root "$BUILDING" apt-get clean >>"$out" 2>&1 || true
    wanted_record >"$BUILDING$RECORD"
    # swap it in: the old root (if any) is moved aside first, then deleted
    if [[ -e "$ROOTFS" ]]; then
        old=$CACHE/.$NAME.old.$$
        mv -T "$ROOTFS" "$old"
        mv -T "$BUILDING" "$ROOTFS"
        BUILDING=""
        remove_tree "$old"
    else
        mv -T "$BUILDING" "$ROOTFS"
        BUILDING=""
    fi
    log "root ready: $ROOTFS"
}

# Make sure ROOTFS is complete and holds the wanted packages.
ensure_root() {
    local want have tmp out=$CACHE/$NAME.build.log
    want=$(wanted_record)
    if [[ -f "$ROOTFS$RECORD" ]]; then
        have=$(cat "$ROOTFS$RECORD")
        if [[ "$have" == "$want" ]]; then
            return 0
        fi
        if [[ "$(grep -v '^package ' <<<"$have")" == "$(grep -v '^package ' <<<"$want")" ]]; then
            log "updating $ROOTFS: the package list changed (log $out)"
            : >"$out"
            install_packages "$ROOTFS" "$out" || return 1
            tmp=$(mktemp "$ROOTFS$RECORD.XXXXXX")
            printf '%s\n' "$want" >"$tmp"
            mv -f "$tmp" "$ROOTFS$RECORD"
            return 0
        fi
        log "rebuilding $ROOTFS: its suite or mirror changed"
    fi
    build_root
}

# stage_old_major: when this host runs an older supported major OLD (15 on
# Debian 12) with its server headers, copy it into the root at
# $OLD_STAGE/usr/{lib,share}/postgresql/OLD (the same layout as on the host,
# so its binaries find their share directory), install this source's
# extension built for OLD into it, and put in $OLD_STAGE/hostlib the host's
# shared libraries those binaries need that the root does not have (by
# soname: ICU and LDAP of the older release, say).  Old binaries run with
# LD_LIBRARY_PATH=$OLD_STAGE/hostlib; the root's own libraries are never
# shadowed, since only missing sonames are copied.  JIT is left out (its
# LLVM is the size of everything else together).  Failing to stage is not
# an error: the test that needs it says it was skipped.
OLD_STAGE=""
OLD_MAJOR=""
stage_old_major() {
    local old bindir pgc build out stage f lib name
    old=$(roastr_system_major 2>/dev/null) || return 0
    [[ "$old" -lt "$MAJOR" ]] || return 0
    bindir=/usr/lib/postgresql/$old/bin
    pgc=$bindir/pg_config
    if [[ ! -x $bindir/postgres || ! -x $pgc || ! -d /usr/include/postgresql/$old/server ]]; then
        log "PostgreSQL $old (server and headers) is not on the host: the $old -> $MAJOR upgrade test will be skipped"
        return 0
    fi
    out=$SRC/tmp_check/pg$MAJOR-old-stage.log
    mkdir -p "$SRC/tmp_check"
    stage=$(mktemp -d "$ROOTFS/var/tmp/roastr_old.XXXXXX")
    chmod 755 "$stage"
    WORK_OLD=$stage
    build=$(mktemp -d /tmp/roastr_oldbuild.XXXXXX)
    {
        tar -C "$SRC" --exclude=./.git --exclude=./tmp_check --exclude=./results --exclude=./output_iso \
            --exclude=./gateway --exclude=./client --exclude=./bench \
            --exclude='*.o' --exclude='*.so' --exclude='*.bc' --exclude='*.d' -cf - . | tar -C "$build" -xf - &&
            mkdir -p "$stage/usr/lib/postgresql" "$stage/usr/share/postgresql" "$stage/hostlib" &&
            cp -a "/usr/lib/postgresql/$old" "$stage/usr/lib/postgresql/" &&
            cp -a "/usr/share/postgresql/$old" "$stage/usr/share/postgresql/" &&
            rm -rf "$stage/usr/lib/postgresql/$old/lib/llvmjit"* "$stage/usr/lib/postgresql/$old/lib/bitcode" &&
            rm -f "$stage/usr/share/postgresql/$old/extension/roastr_state"* &&
            make -C "$build" -s -j2 PG_CONFIG="$pgc" with_llvm=no &&
            make -C "$build" -s install PG_CONFIG="$pgc" with_llvm=no DESTDIR="$stage"
    } >"$out" 2>&1 || {
        rm -rf "$build"
        log "could not stage PostgreSQL $old into the root (see $out): the upgrade test will be skipped"
        remove_tree "$stage" || true
        WORK_OLD=""
        return 0
    }
    rm -rf "$build"
    # the libraries the old binaries and modules need that the root lacks
    for f in "$stage/usr/lib/postgresql/$old/bin/"* "$stage/usr/lib/postgresql/$old/lib/"*.so; do
        [[ -f "$f" ]] || continue
        ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3}' || true
    done | sort -u | while read -r lib; do
        name=${lib##*/}
        if [[ ! -e "$ROOTFS/usr/lib/x86_64-linux-gnu/$name" && ! -e "$ROOTFS/lib/x86_64-linux-gnu/$name" &&
              ! -e "$ROOTFS/usr/lib/$name" && ! -e "$stage/hostlib/$name" ]]; then
            cp -L "$lib" "$stage/hostlib/$name"
        fi
    done
    OLD_STAGE=$stage
    OLD_MAJOR=$old
    log "PostgreSQL $old staged for the upgrade test ($(find "$stage/hostlib" -type f | wc -l) host libraries)"
}

# ------------------------------------------------------------- cleanup
cleanup() {
    local status=0 i d
    trap '' INT TERM HUP
    # the command first: it cleans up after itself, given a little time
    if [[ -n "$CHILD" ]] && kill -0 "$CHILD" 2>/dev/null; then
        kill -TERM -- "-$CHILD" 2>/dev/null || true
        for ((i = 0; i < 300; i++)); do
            kill -0 "$CHILD" 2>/dev/null || break
            sleep 0.1
        done
    fi
    for d in "$BUILDING" "$ROOTFS"; do
        [[ -n "$d" && -d "$d" ]] && end_root_processes "$d"
    done
    unmount_all || status=1
    if [[ -n "$LOG_MOUNT" ]]; then
        # the empty directories that held the mount point
        d=$LOG_MOUNT
        while [[ "$d" != "$ROOTFS" && "$d" != "$LOG_KEEP" && "$d" == "$ROOTFS"/* ]] && rmdir "$d" 2>/dev/null; do
            d=$(dirname "$d")
        done
    fi
    if [[ -n "$WORK" ]]; then
        remove_tree "$WORK" || status=1
    fi
    if [[ -n "$WORK_OLD" ]]; then
        remove_tree "$WORK_OLD" || status=1
    fi
    if [[ -n "$BUILDING" && -d "$BUILDING" ]]; then
        remove_tree "$BUILDING" || status=1
    fi
    return "$status"
}
on_exit() {
    local rc=$?
    cleanup || { [[ $rc -ne 0 ]] || rc=1; }
    # `test` always ends with the suite's closing line: when the suite
    # never started (the root could not be built), say so in that form
    if [[ "$ACTION" == test && -z "$STARTED" && $rc -ne 0 ]]; then
        echo "0 passed, 1 failed"
    fi
    exit "$rc"
}
trap on_exit EXIT

# A signal: pass it on to the command, whose exit ends the wait below; with
# no command running, exit (the EXIT trap cleans up).
on_signal() {
    SIGNALLED=$1
    if [[ -n "$CHILD" ]] && kill -0 "$CHILD" 2>/dev/null; then
        # (before setsid has run, the group does not exist yet)
        kill -TERM -- "-$CHILD" 2>/dev/null || kill -TERM "$CHILD" 2>/dev/null || true
    else
        exit "$1"
    fi
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP

# ------------------------------------------------------------- main
exec 9>"$CACHE/$NAME.lock"
if ! flock -n 9; then
    log "waiting for another run that uses $ROOTFS"
    flock 9
fi
ensure_root
[[ "$ACTION" == prepare ]] && exit 0

# What an earlier run left in the root's temporary directories (a run that
# was killed, a TAP node that died): the root is ours while we hold the
# lock, and nothing is mounted there yet.
for d in "$ROOTFS/tmp" "$ROOTFS/var/tmp"; do
    # (and put back one an earlier version of this script removed)
    [[ -d "$d" ]] || install -d -m 1777 "$d"
    find "$d" -mindepth 1 -maxdepth 1 -print0 | while IFS= read -r -d '' f; do
        remove_tree "$f"
    done
done

mount_root "$ROOTFS"
WORK=$(mktemp -d "$ROOTFS/var/tmp/roastr_src.XXXXXX")
chmod 755 "$WORK"
tar -C "$SRC" --exclude=./.git --exclude=./tmp_check --exclude=./results --exclude=./output_iso \
    --exclude=./log --exclude=./gateway/node_modules --exclude=./bench/results \
    --exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - . | tar -C "$WORK" -xf -

# The command's environment: clean, PostgreSQL MAJOR first on PATH, plus
# the knobs the suite reads.
envv=(PATH="/usr/lib/postgresql/$MAJOR/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
      HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" PG="$MAJOR")
if [[ -r "$ROOTFS$ROOT_CA" ]]; then
    envv+=(NODE_EXTRA_CA_CERTS="$ROOT_CA")
fi
while IFS='=' read -r var _; do
    case "$var" in
        CI | ROASTR_* | PROVE_FLAGS | EXTRA_REGRESS_OPTS | FUZZ_* | http_proxy | https_proxy | no_proxy)
            [[ "$var" == _ROASTR_* ]] || envv+=("$var=${!var}") ;;
    esac
done < <(env)

# The host's own PostgreSQL major, when older than MAJOR: staged into the
# root (with the extension built for it here) so that
# test/extra/major_upgrade.sh can move a database from it to MAJOR.
stage_old_major
if [[ -n "$OLD_STAGE" ]]; then
    envv+=(ROASTR_OLD_PG="${OLD_STAGE#"$ROOTFS"}" ROASTR_OLD_MAJOR="$OLD_MAJOR")
fi

if [[ "$ACTION" == test ]]; then
    LOGS=$SRC/tmp_check/pg$MAJOR
    rm -rf "$LOGS"
    mkdir -p "$LOGS"
    # Only the directories made for the mount point go again at the end (a
    # source under /tmp must not take the root's /tmp with it).
    LOG_KEEP=$ROOTFS$LOGS
    while [[ ! -d "$LOG_KEEP" ]]; do LOG_KEEP=$(dirname "$LOG_KEEP"); done
    mount_at "$ROOTFS$LOGS" --bind "$LOGS"
    LOG_MOUNT=$ROOTFS$LOGS
    envv+=(ROASTR_LOGDIR="$LOGS")
    set -- bash scripts/test.sh
fi

# The command, as a step (run_step): its own process group, signals passed on.
STARTED=1
rc=0
# shellcheck disable=SC2016   # the inner bash expands $1 and $@
run_step chroot "$ROOTFS" /usr/bin/env -i "${envv[@]}" /bin/bash -c 'cd "$1" && shift && exec "$@"' \
    pgroot "${WORK#"$ROOTFS"}" "$@" || rc=$?
exit "$rc"
