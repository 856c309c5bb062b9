"""Kiosk releases: build an artifact from a checkout, install it side by side, switch to it.

The API other modules use (the build in release_build.py, the install in release_install.py):
``build_release``, ``read_release``, ``install_release``, ``current_version``,
``switch_current``, ``installed_versions`` (and ``remove_release``). ``ReleaseStep`` is
kiosk-provision's ``release`` step (``--release ARTIFACT``). Commands::

    python -m provisioning.release build --out DIR [--version V] [--source CHECKOUT]
    python -m provisioning.release show ARTIFACT     # verify it and print its release.json
    python -m provisioning.release install ARTIFACT [--root DIR] [--system-site-packages]
    python -m provisioning.release list [--root DIR]          # installed, * the current one
    python -m provisioning.release remove VERSION [--root DIR]  # not the current one

``install`` (install and make current) needs only the standard library, so a first install
can run it from the artifact's wheel itself: ``PYTHONPATH=the.whl python3 -m
provisioning.release install kiosk-<version>.tar`` (docs/provisioning.md).

(``kiosk-provision build-release --out DIR`` is the first.) docs/provisioning.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from provisioning.release_build import (
    ReleaseManifest,
    build_release,
    check_version,
    default_version,
    read_release,
)
from provisioning.release_install import (
    CURRENT_LINK,
    RELEASES_DIR,
    current_version,
    install_release,
    install_release_reporting,
    installed_build,
    installed_versions,
    release_dir,
    remove_release,
    switch_current,
    system_site_packages,
)
from provisioning.steps import Finding, State, Step, done, skip, todo
from provisioning.target import ProvisionError, Target

log = logging.getLogger(__name__)

__all__ = [
    "CURRENT_LINK",
    "RELEASES_DIR",
    "ReleaseManifest",
    "ReleaseStep",
    "build_release",
    "check_version",
    "current_version",
    "default_version",
    "install_release",
    "installed_versions",
    "read_release",
    "release_dir",
    "remove_release",
    "switch_current",
]


class ReleaseStep(Step):
    """Install the release given with ``--release ARTIFACT`` and make it current."""

    name = "release"

    def __init__(
        self, target: Target, artifact: Path | None, system_site_packages: bool = False
    ) -> None:
        self.target, self.artifact, self.sss = target, artifact, system_site_packages

    def check(self) -> Finding:
        if self.artifact is None:
            now = current_version(self.target)
            return skip(f"no --release ARTIFACT; current release: {now or 'none'}")
        manifest = read_release(self.artifact)  # verifies it, in a dry run too
        version, now = manifest.version, current_version(self.target)
        if installed_build(self.target, manifest) and now == version:
            if system_site_packages(self.target, version) != self.sss:
                return todo(
                    f"set include-system-site-packages to {str(self.sss).lower()} in release "
                    f"{version}"
                )
            return done(f"release {version} installed, {CURRENT_LINK} -> releases/{version}")
        if version in installed_versions(self.target):
            return todo(f"point {CURRENT_LINK} at releases/{version} (now: {now or 'none'})")
        return todo(
            f"install release {version} in {RELEASES_DIR}/{version} and point "
            f"{CURRENT_LINK} at it (now: {now or 'none'})"
        )

    def apply(self) -> str:
        assert self.artifact is not None  # check() skips without one
        folder, did = install_release_reporting(self.target, self.artifact, self.sss)
        previous = switch_current(self.target, folder.name)
        return f"{did}; {CURRENT_LINK} -> releases/{folder.name} (was {previous or 'none'})"


def default_source() -> Path:
    """The checkout this code runs from, else the working folder."""
    here = Path(__file__).resolve().parents[1]
    return here if (here / "setup.cfg").is_file() else Path.cwd()


def build_parser(prog: str = "python -m provisioning.release") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Build or inspect kiosk releases.")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build DIR/kiosk-<version>.tar from a checkout")
    add_build_arguments(b)
    s = sub.add_parser("show", help="verify an artifact (sha256) and print its release.json")
    s.add_argument("artifact", type=Path)
    i = sub.add_parser("install", help="install an artifact and make it the current release")
    i.add_argument("artifact", type=Path)
    i.add_argument("--root", type=Path, metavar="DIR", help="install under DIR instead of /")
    i.add_argument(
        "--system-site-packages",
        action="store_true",
        help="the venv also sees the system's packages (apt's python3-picamera2)",
    )
    for name, text in (("list", "the installed releases"), ("remove", "delete a release")):
        c = sub.add_parser(name, help=text)
        if name == "remove":
            c.add_argument("version")
        c.add_argument("--root", type=Path, metavar="DIR", help="under DIR instead of /")
    return p


def run_list_or_remove(args: argparse.Namespace) -> int:
    target = Target.make(args.root, False)
    if args.command == "remove":
        try:
            remove_release(target, args.version)
        except ProvisionError as exc:
            print(f"release remove: {exc}", file=sys.stderr)
            return 1
        print(f"removed release {args.version}")
        return 0
    current = current_version(target)
    for version in installed_versions(target):
        print(f"{'*' if version == current else ' '} {version}")
    return 0


def run_install(args: argparse.Namespace) -> int:
    target = Target.make(args.root, False)
    try:
        step = ReleaseStep(target, args.artifact, args.system_site_packages)
        finding = step.check()
        print(finding.detail if finding.state is State.DONE else step.apply())
    except ProvisionError as exc:
        print(f"release install: {exc}", file=sys.stderr)
        return 1
    return 0


def add_build_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="where the tar goes")
    p.add_argument(
        "--version",
        metavar="V",
        help="release version (PEP 440); default kiosk.__version__ + git, e.g. 0.1.0+g161a356",
    )
    p.add_argument(
        "--source",
        type=Path,
        default=None,
        metavar="CHECKOUT",
        help="the project checkout to build (default: the one this runs from)",
    )


def run_build(args: argparse.Namespace) -> int:
    try:
        artifact = build_release(args.source or default_source(), args.out, args.version)
    except ProvisionError as exc:
        print(f"build-release: {exc}", file=sys.stderr)
        return 1
    print(artifact)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "build":
        return run_build(args)
    if args.command == "install":
        return run_install(args)
    if args.command in ("list", "remove"):
        return run_list_or_remove(args)
    try:
        print(read_release(args.artifact).to_json(), end="")
    except ProvisionError as exc:
        print(f"release: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
