"""The Debian packages the kiosk needs, installed with apt on the kiosk itself.

Under ``--root`` they are only checked (in DIR's dpkg database), never installed: installing
into an image needs its own apt (chroot, or mmdebstrap --include), and the report says which
are missing and the command to add them.
"""

from __future__ import annotations

import logging

from provisioning.steps import Finding, Step, done, skip, todo
from provisioning.target import Target, need, run

log = logging.getLogger(__name__)

# What the kiosk's Python packages load at run time, plus the venv for its releases.
# The same list as scripts/dev.sh's (a test keeps them in step).
KIOSK_PACKAGES = (
    "python3-venv",
    "libzbar0",  # pyzbar
    "libgl1",  # OpenCV, Kivy
    "libegl1",
    "libegl-mesa0",
    "libgl1-mesa-dri",
    "libmtdev1",  # Kivy touch input
    "fonts-wqy-microhei",  # Chinese glyphs on screen and receipts
)
APT_TIMEOUT_S = 1800  # a Pi on a slow store network
FORMAT = "-f=${Package} ${Status}\\n"  # dpkg-query turns the backslash-n into a newline


class PackagesStep(Step):
    name = "packages"

    def __init__(self, target: Target, packages: tuple[str, ...] = KIOSK_PACKAGES) -> None:
        self.target, self.packages = target, packages

    def _missing(self) -> list[str]:
        admindir = self.target.path("/var/lib/dpkg")
        result = run(
            [need("dpkg-query", "dpkg"), f"--admindir={admindir}", "-W", FORMAT, *self.packages],
            what="checking installed packages",
            check=False,  # status 1 when a package is unknown: that is "missing", not an error
        )
        installed = {
            line.split()[0]
            for line in result.stdout.splitlines()
            if line.endswith(" install ok installed")
        }
        return [p for p in self.packages if p not in installed]

    def check(self) -> Finding:
        if not self.target.live and not self.target.path("/var/lib/dpkg/status").exists():
            return skip(
                f"not checked: {self.target.root} has no dpkg database (var/lib/dpkg/status); "
                f"the kiosk needs {' '.join(self.packages)} in the image"
            )
        missing = self._missing()
        if not missing:
            return done(f"installed: {' '.join(self.packages)}")
        if not self.target.live:
            return skip(
                f"missing in {self.target.root}, not installed under --root: {' '.join(missing)}; "
                f"add them with: chroot {self.target.root} apt-get install -y {' '.join(missing)}"
            )
        return todo(f"apt-get install {' '.join(missing)}")

    def apply(self) -> str:
        missing = self._missing()
        apt = need("apt-get", "apt")
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        run([apt, "update", "-q"], what="apt-get update", timeout_s=APT_TIMEOUT_S, env=env)
        run(
            [apt, "install", "-y", "-q", "--no-install-recommends", *missing],
            what="installing the kiosk's packages",
            timeout_s=APT_TIMEOUT_S,
            env=env,
        )
        return f"installed {' '.join(missing)}"
