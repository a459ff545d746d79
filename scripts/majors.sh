# shellcheck shell=bash
# scripts/majors.sh — the PostgreSQL majors roastr_state supports, and the
# Debian release that ships each one.  Meant to be SOURCED (by deps.sh,
# test.sh, pgroot.sh); sets no shell options.
#
#   major  Debian release           clang (for libFuzzer)  how make test runs it
#   15     12 bookworm (the host)   14                     on the host
#   17     13 trixie                19                     in a debootstrap root
#
# Each major is tested on the Debian release that ships it, with that
# release's own packages: no third-party repository is needed.
#
# Functions:
#   roastr_majors              the supported majors, "15 17"
#   roastr_suite_of MAJOR      the Debian codename that ships MAJOR
#   roastr_clang_of MAJOR      the clang major of that release
#   roastr_system_suite        the codename of the running system ("" if unknown)
#   roastr_system_major        the major of the running system's release
#                              (fails if it ships none that we support)
#   roastr_check_major MAJOR   fails with a message unless MAJOR is supported

roastr_majors() {
    echo "15 17"
}

roastr_suite_of() {
    case "$1" in
        15) echo bookworm ;;
        17) echo trixie ;;
        *) return 1 ;;
    esac
}

roastr_clang_of() {
    case "$1" in
        15) echo 14 ;;
        17) echo 19 ;;
        *) return 1 ;;
    esac
}

roastr_system_suite() {
    local VERSION_CODENAME=""
    if [[ -r /etc/os-release ]]; then
        # shellcheck disable=SC1091
        VERSION_CODENAME=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    fi
    echo "$VERSION_CODENAME"
}

roastr_system_major() {
    local suite m
    suite=$(roastr_system_suite)
    for m in $(roastr_majors); do
        if [[ "$(roastr_suite_of "$m")" == "$suite" ]]; then
            echo "$m"
            return 0
        fi
    done
    return 1
}

roastr_check_major() {
    if ! roastr_suite_of "$1" >/dev/null 2>&1; then
        echo "PostgreSQL major '$1' is not supported (supported: $(roastr_majors))" >&2
        return 1
    fi
}
