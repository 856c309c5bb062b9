"""``kiosk-provision``: set up a Raspberry Pi (or an image folder) as a loyalty kiosk.

Idempotent: every step checks first and changes only what differs, so a second run reports
"nothing to change". Exit status: 0 done, 1 a step or the self-test failed, 2 bad arguments
or configuration (nothing was changed). docs/provisioning.md is the technician's guide.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from kiosk import __version__
from kiosk.errors import ConfigError
from provisioning.accounts import AccountsStep
from provisioning.answers import ConfigPlan, build_config, parse_compartment
from provisioning.commands import CommandsStep
from provisioning.enroll import EnrollStep
from provisioning.files import CONFIG_PATH, ConfigStep, FoldersStep
from provisioning.packages import PackagesStep
from provisioning.release import ReleaseStep, add_build_arguments, read_release, run_build
from provisioning.ssh import SshStep
from provisioning.steps import Skipped, Step, StepResult, failed, format_table, run_plan, summary
from provisioning.target import ProvisionError, Target, run, which
from provisioning.units import UnitsStep

log = logging.getLogger(__name__)

STEP_NAMES = (
    "packages",
    "accounts",
    "folders",
    "config",
    "enroll",
    "release",
    "units",
    "commands",
    "ssh",
)
SELFTEST_TIMEOUT_S = 180
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kiosk-provision",
        description="Set up this machine (run as root) or an image folder (--root) as a "
        "loyalty kiosk. Safe to run again: only what differs is changed.",
        epilog="Exit status: 0 done, 1 a step or the self-test failed, 2 bad arguments. "
        "Also: 'kiosk-provision build-release --out DIR' builds a release artifact. "
        "Guide: docs/provisioning.md",
    )
    p.add_argument("--root", type=Path, metavar="DIR", help="apply under DIR instead of /")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    g = p.add_argument_group("configuration (/etc/kiosk/kiosk.toml; docs/config.md)")
    g.add_argument("--answers", type=Path, metavar="FILE", help="a kiosk.toml, whole or in part")
    g.add_argument("--kiosk-id", metavar="ID", help="kiosk.id, e.g. store12-k1")
    g.add_argument("--server-url", metavar="URL", help="server.url, e.g. https://store.example.com")
    g.add_argument(
        "--server-pin",
        action="append",
        default=None,
        metavar="PIN",
        help="server.pins: the store server's key pin, sha256/... from 'storeserver tls-pin "
        "server.pem'; once or twice (replaces them all, and any old pin_sha256)",
    )
    g.add_argument("--store-name-zh", metavar="NAME", help="kiosk.store_name_zh")
    g.add_argument("--store-name-en", metavar="NAME", help="kiosk.store_name_en")
    g.add_argument("--language", choices=("zh", "en"), help="kiosk.language")
    g.add_argument("--timezone", metavar="ZONE", help="kiosk.timezone, e.g. Asia/Shanghai")
    g.add_argument(
        "--compartment",
        action="append",
        default=[],
        type=_compartment,
        metavar="N:RELAY:SENSOR",
        help="a locker door and its BCM pins, e.g. 1:5:6; once per door (replaces them all)",
    )
    g.add_argument("--sim", action="store_true", help="simulated camera, printer and locker")
    e = p.add_argument_group("enrollment and the rest")
    e.add_argument(
        "--enroll-code",
        default=os.environ.get("KIOSK_ENROLL_CODE") or None,
        metavar="CODE",
        help="one-time code from 'storeserver enroll-code --kiosk ID' (made for this kiosk id); "
        "'-' reads it from standard input "
        "(kept out of ps and the shell history; the fleet playbook does so), or env "
        "KIOSK_ENROLL_CODE",
    )
    e.add_argument("--re-enroll", action="store_true", help="enroll even if a token exists")
    e.add_argument("--harden-ssh", action="store_true", help="key-only SSH, no root password")
    e.add_argument(
        "--release",
        type=Path,
        metavar="ARTIFACT",
        help="install this release (kiosk-<version>.tar from 'kiosk-provision build-release') "
        "in /opt/kiosk/releases/<version> and point /opt/kiosk/current at it",
    )
    e.add_argument(
        "--system-site-packages",
        action="store_true",
        help="with --release: the release's venv also sees the system's Python packages "
        "(apt's python3-picamera2 for a CSI camera)",
    )
    e.add_argument(
        "--units-dir",
        type=Path,
        metavar="DIR",
        help="systemd units to install (default: the current release's, else this software's)",
    )
    e.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=(*STEP_NAMES, "selftest"),
        metavar="STEP",
        help=f"leave out a step (repeatable): {', '.join((*STEP_NAMES, 'selftest'))}",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log each command run")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def _compartment(text: str) -> dict[str, int]:
    try:
        return parse_compartment(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_steps(target: Target, plan: ConfigPlan, args: argparse.Namespace) -> list[Step]:
    state_dir = str(plan.config.kiosk.state_dir)
    steps: dict[str, Step] = {
        "packages": PackagesStep(target),
        "accounts": AccountsStep(target, state_dir),
        "folders": FoldersStep(target, state_dir),
        "config": ConfigStep(target, plan.text, plan.summary()),
        "enroll": EnrollStep(target, plan.config, args.enroll_code, args.re_enroll),
        "release": ReleaseStep(target, args.release, args.system_site_packages),
        "units": UnitsStep(target, args.units_dir, state_dir),
        "commands": CommandsStep(target),
        "ssh": SshStep(target, args.harden_ssh),
    }
    return [Skipped(name) if name in args.skip else steps[name] for name in STEP_NAMES]


def _kiosk_running() -> bool:
    systemctl = which("systemctl")
    if systemctl is None:
        return False
    state = run([systemctl, "is-active", "kiosk.service"], what="checking kiosk", check=False)
    return state.stdout.strip() == "active"


def run_selftest(target: Target) -> tuple[bool | None, str]:
    """``kiosk selftest`` on the written config (simulators under --root); None = not run."""
    if target.live and _kiosk_running():
        return None, "not run: kiosk.service holds the devices; stop it, then run kiosk selftest"
    argv = [sys.executable, "-m", "kiosk", "--config", str(target.path(CONFIG_PATH)), "selftest"]
    if not target.live:
        argv.append("--sim")  # an image folder has no devices: check the config and the code
    result = run(argv, what="kiosk selftest", timeout_s=SELFTEST_TIMEOUT_S, check=False)
    return result.returncode == 0, (result.stdout + result.stderr).rstrip()


def _report(results: list[StepResult], target: Target, args: argparse.Namespace) -> int:
    what = "self-test (simulated devices)" if not target.live else "self-test"
    print(format_table(results))
    tail = ""
    status = EXIT_FAILED if failed(results) else EXIT_OK
    if args.dry_run:
        tail = "" if "selftest" in args.skip else f"; then: {what}"
    elif "selftest" in args.skip:
        tail = "; self-test left out (--skip selftest)"
    elif failed(results):
        tail = "; self-test not run"
    else:
        ok, output = run_selftest(target)
        print(f"\n{what}:\n{output}")
        tail = {
            True: "; self-test passed",
            False: "; self-test FAILED",
            None: "; self-test skipped",
        }[ok]
        if ok is False:
            status = EXIT_FAILED
    print(f"\nkiosk-provision: {summary(results, args.dry_run)}{tail}")
    return status


def build_release_main(argv: list[str]) -> int:
    """``kiosk-provision build-release --out DIR [--version V]``: prints the artifact's path."""
    parser = argparse.ArgumentParser(
        prog="kiosk-provision build-release",
        description="Build the release artifact DIR/kiosk-<version>.tar from a checkout "
        "(docs/provisioning.md).",
    )
    add_build_arguments(parser)
    return run_build(parser.parse_args(argv))


SUBCOMMANDS = {"build-release": build_release_main}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.enroll_code == "-":
        args.enroll_code = sys.stdin.readline().strip() or None
        if args.enroll_code is None:
            parser.error("--enroll-code -: standard input held no code (one line expected)")
    if args.system_site_packages and args.release is None:
        parser.error("--system-site-packages goes with --release ARTIFACT")
    if args.re_enroll and not args.enroll_code:
        parser.error("--re-enroll needs --enroll-code CODE (a new one-time code)")
    if args.root is not None and args.root.exists() and not args.root.is_dir():
        parser.error(f"--root {args.root}: not a folder")
    target = Target.make(args.root, args.dry_run)
    if target.live and not target.as_root and not args.dry_run:
        parser.error(
            "this changes the machine: run it as root (sudo kiosk-provision ...), "
            "or pass --root DIR or --dry-run"
        )
    try:
        if args.release is not None:
            read_release(args.release)  # a bad artifact changes nothing, like a bad config
        plan = build_config(target, args.answers, vars(args), args.compartment, args.sim)
    except (ConfigError, ProvisionError) as exc:
        print(f"kiosk-provision: {exc}", file=sys.stderr)
        return EXIT_USAGE
    head = "dry run, nothing is changed: plan for" if args.dry_run else "provisioning"
    print(f"kiosk-provision {__version__}: {head} {target.where()}\n")
    results = run_plan(build_steps(target, plan, args), args.dry_run)
    return _report(results, target, args)


if __name__ == "__main__":
    sys.exit(main())
