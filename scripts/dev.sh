#!/usr/bin/env bash
# Set up this checkout and run it: `scripts/dev.sh demo` or `scripts/dev.sh test`.
# Works on a fresh Debian 12 / Raspberry Pi OS (bookworm) with only python3 and apt:
# installs the missing system packages (sudo when not root), creates .venv, installs the
# project with its extras pinned by constraints.txt, then runs the demo or the checks.
# `scripts/dev.sh --print-packages demo|test` only prints what it would install (no apt, no
# pip); KIOSK_MACHINE overrides `uname -m` (e.g. KIOSK_MACHINE=aarch64 to see a Pi's list).
set -euo pipefail
cd "$(dirname "$0")/.."

# what the kiosk needs (as provisioning/packages.py KIOSK_PACKAGES)
APT_PACKAGES=(python3-venv libzbar0 libgl1 libegl1 libegl-mesa0 libgl1-mesa-dri libmtdev1 fonts-wqy-microhei)
# only the tests need these (the systemd units' and the fleet playbook's tests): a kiosk set up
# with the demo command must not get an SSH server from it
TEST_APT_PACKAGES=(openssh-server systemd sudo)

print_only=false
if [ "${1:-}" = "--print-packages" ]; then
    print_only=true
    shift
fi
command=${1:-}
case "$command" in
demo) ;;
test) APT_PACKAGES+=("${TEST_APT_PACKAGES[@]}") ;;
*)
    echo "usage: scripts/dev.sh [--print-packages] demo|test [args]" >&2
    exit 2
    ;;
esac
shift

# a Raspberry Pi (64-bit OS) also gets the [pi] extra: lgpio for gpiozero, zxing-cpp
machine=${KIOSK_MACHINE:-$(uname -m)}
extras=dev
[ "$machine" = aarch64 ] && extras=dev,pi

if $print_only; then
    echo "machine: $machine"
    echo "apt: ${APT_PACKAGES[*]}"
    echo "pip: -c constraints.txt -e .[$extras]"
    exit 0
fi

need_apt=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing system packages: ${need_apt[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# reinstall only when the dependency files or the extras changed since the last install
stamp=.venv/.installed
want=$( (cat setup.cfg pyproject.toml constraints.txt && echo "$extras") | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install -q --upgrade "pip>=23"
    .venv/bin/python -m pip install -q -c constraints.txt -e ".[$extras]"
    echo "$want" >"$stamp"
fi

case "$command" in
demo)
    exec .venv/bin/kiosk demo "$@"
    ;;
test)
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
    exec .venv/bin/python -m pytest "$@"
    ;;
esac
