#!/usr/bin/env bash
# Build (once) or reuse a Debian 13 (trixie) root with Krita 5.2 and GIMP 3 for the real-editor tests.
#
#   tests/editors/editor_env.sh ensure      -> prints the root's path (builds it if absent)
#   tests/editors/editor_env.sh run CMD...  -> runs CMD inside the editor environment, with the
#                                             repository bind-mounted at /repo (cwd /repo)
#
# Inside, HOME is $CLICKMATTE_EDITOR_HOME (default /tmp/editor-home, a path inside the root), and
# every CLICKMATTE_* variable plus QT_QPA_PLATFORM is passed through; nothing else is (the host's
# PATH/PYTHONPATH would point at the wrong Python). Use `run env NAME=VALUE CMD...` for more.
#
# On a Debian 13 host with the editors installed, the host itself is used (root "/").
# On Debian 12 a debootstrap chroot is built under $CLICKMATTE_EDITOR_ROOT
# (default /var/cache/clickmatte/trixie-editors). Mounts live in a private mount namespace and
# vanish with the process. Exit code 77 = the environment cannot be had here (tests skip).
set -euo pipefail

ROOT="${CLICKMATTE_EDITOR_ROOT:-/var/cache/clickmatte/trixie-editors}"
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
PKGS="gimp krita python3-pyqt5 xvfb xauth python3-numpy python3-zmq python3-pil"
MIRROR="http://deb.debian.org/debian"
STAMP_VERSION=1

host_has_editors() {
    [[ "$(cut -d. -f1 /etc/debian_version 2>/dev/null)" == "13" ]] &&
        command -v gimp-console-3.0 >/dev/null && command -v kritarunner >/dev/null
}

build_root() {
    if [[ "$(id -u)" != 0 ]]; then
        if [[ -f "$ROOT/.clickmatte-ready" ]]; then
            echo "editor_env: $ROOT exists, but entering it (unshare + chroot) needs root" >&2
        else
            echo "editor_env: need root to build a chroot (Debian 12 host without Krita 5.2 / GIMP 3)" >&2
        fi
        exit 77
    fi
    mkdir -p "$(dirname "$ROOT")"
    exec 9>"$ROOT.lock"
    flock 9
    if [[ -f "$ROOT/.clickmatte-ready" ]] && [[ "$(cat "$ROOT/.clickmatte-ready")" == "$STAMP_VERSION" ]]; then
        return 0
    fi
    if ! command -v debootstrap >/dev/null; then
        apt-get update -qq >&2 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2 || { echo "editor_env: cannot install debootstrap" >&2; exit 77; }
    fi
    local tmp="$ROOT.building"
    # a half-built root never has anything mounted (mounts are namespace-private), so removal is safe
    rm -rf --one-file-system "$tmp"
    echo "editor_env: building Debian 13 root at $ROOT (a few minutes, once)" >&2
    debootstrap --variant=minbase trixie "$tmp" "$MIRROR" >&2 || { echo "editor_env: debootstrap failed" >&2; exit 77; }
    cat >"$tmp/etc/apt/sources.list" <<SRC
deb $MIRROR trixie main
deb $MIRROR trixie-updates main
deb http://deb.debian.org/debian-security trixie-security main
SRC
    cp /etc/resolv.conf "$tmp/etc/resolv.conf"
    unshare --mount --propagation private bash -c "
        mount -t proc proc '$tmp/proc' && mount --rbind /sys '$tmp/sys' && mount --rbind /dev '$tmp/dev' &&
        chroot '$tmp' /usr/bin/env DEBIAN_FRONTEND=noninteractive bash -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends $PKGS'
    " >&2 || { echo "editor_env: installing the editors failed" >&2; exit 77; }
    echo "$STAMP_VERSION" >"$tmp/.clickmatte-ready"
    rm -rf --one-file-system "$ROOT"
    mv "$tmp" "$ROOT"
}

ensure() {
    if host_has_editors; then echo /; return 0; fi
    build_root
    echo "$ROOT"
}

cmd="${1:-ensure}"
shift || true
case "$cmd" in
ensure)
    ensure
    ;;
run)
    root="$(ensure)"
    if [[ "$root" == "/" ]]; then
        if [[ -n "${CLICKMATTE_EDITOR_HOME:-}" ]]; then mkdir -p "$CLICKMATTE_EDITOR_HOME"; export HOME="$CLICKMATTE_EDITOR_HOME"; fi
        cd "$REPO" && exec "$@"
    fi
    # pass the command through the environment to avoid quoting trouble
    export CLICKMATTE_CHROOT_CMD="$(printf '%q ' "$@")"
    exec unshare --mount --propagation private bash -c '
        set -e
        R="$0"; REPO="$1"
        mount -t proc proc "$R/proc"
        mount --rbind /sys "$R/sys"
        mount --rbind /dev "$R/dev"
        mkdir -p "$R/repo" "$R/tmp"
        mount --bind "$REPO" "$R/repo"
        mount -t tmpfs tmpfs "$R/dev/shm" 2>/dev/null || true
        pass=()
        for v in $(compgen -e); do
            case "$v" in
            CLICKMATTE_CHROOT_CMD|CLICKMATTE_EDITOR_HOME|CLICKMATTE_EDITOR_ROOT) ;;
            CLICKMATTE_*|QT_QPA_PLATFORM) pass+=("$v=${!v}") ;;
            esac
        done
        exec chroot "$R" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            HOME="${CLICKMATTE_EDITOR_HOME:-/tmp/editor-home}" LANG=C.UTF-8 \
            CLICKMATTE_ENDPOINT="${CLICKMATTE_ENDPOINT:-}" "${pass[@]}" \
            bash -c "cd /repo && $CLICKMATTE_CHROOT_CMD"
    ' "$root" "$REPO"
    ;;
*)
    echo "usage: $0 ensure | run CMD..." >&2
    exit 2
    ;;
esac
