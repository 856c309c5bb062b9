#!/usr/bin/env bash
# Set up this checkout and run it: `scripts/dev.sh demo` or `scripts/dev.sh test`.
# Works on a fresh Debian 12 / Raspberry Pi OS (bookworm) with only python3 and apt:
# installs the missing system packages (sudo when not root), creates .venv, installs the
# project with its extras pinned by constraints.txt, then runs the demo or the checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3-venv libzbar0 libgl1 libegl1 libegl-mesa0 libgl1-mesa-dri libmtdev1 fonts-wqy-microhei openssh-server systemd sudo)

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
# reinstall only when the dependency files changed since the last install
stamp=.venv/.installed
want=$(cat setup.cfg pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install -q --upgrade "pip>=23"
    .venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
    echo "$want" >"$stamp"
fi

case "${1:-}" in
demo)
    shift
    exec .venv/bin/kiosk demo "$@"
    ;;
test)
    shift
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
    exec .venv/bin/python -m pytest "$@"
    ;;
*)
    echo "usage: scripts/dev.sh demo|test [args]" >&2
    exit 2
    ;;
esac
