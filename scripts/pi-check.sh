#!/usr/bin/env bash
# The arm64 proof: a Debian bookworm arm64 root (debootstrap + qemu-user-static), the kiosk
# installed into it from a release artifact with kiosk-provision --root, and kiosk
# check-config, selftest --sim, the demo's tour and a fast test subset run inside it under
# emulation. Prints each step's time and result (a markdown table) and every installed wheel;
# exits non-zero on any failure. Slow (about half an hour; see README "The arm64 proof"):
# not part of CI.
#   scripts/pi-check.sh [--work DIR] [--rebuild-root] [--slow-factor N] [--tests PATH ...]
# Needs root for debootstrap, mount and chroot (sudo when not root, as scripts/dev.sh does);
# the host's tools and this checkout's venv (.venv, made by scripts/dev.sh) first.
set -euo pipefail
cd "$(dirname "$0")/.."

HOST_PACKAGES=(debootstrap qemu-user-static binfmt-support)
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

need_apt=()
for pkg in "${HOST_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
    echo "installing host packages: ${need_apt[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

python=.venv/bin/python
if [ ! -x "$python" ]; then
    echo "no .venv here: run scripts/dev.sh test (or demo) once first" >&2
    exit 2
fi

work=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    [ "${args[$i]}" = "--work" ] && work=${args[$((i + 1))]:-}
done
work=${work:-${XDG_CACHE_HOME:-$HOME/.cache}/kiosk-pi-check}
# a backstop to the Python side's own cleanup: nothing stays mounted in the root on any exit
cleanup() {
    local root
    root=$(realpath -m "$work/root")
    findmnt -rn -o TARGET | awk -v r="$root" '$0 == r || index($0, r "/") == 1' | sort -r | while read -r point; do
        $sudo umount --lazy "$point" || true
    done
}
trap cleanup EXIT
PYTHONPATH=$PWD "$python" -m scripts.pi_check "$@"
