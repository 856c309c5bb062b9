"""``kiosk`` command: the composition root (config -> adapters -> services -> app)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from kiosk import __version__
from kiosk.commands.idle import add_idle
from kiosk.commands.maintenance import add_subcommands
from kiosk.commands.run import add_run
from kiosk.config import DEFAULT_CONFIG_PATH, load_config
from kiosk.errors import KioskError

EXAMPLE_CONFIG = Path(__file__).with_name("kiosk.example.toml")


def cmd_check_config(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    print(
        f"{cfg.source}: OK (kiosk {cfg.kiosk.id}, server {cfg.server.url}, "
        f"{len(cfg.locker.compartments)} compartments)"
    )
    return 0


def cmd_selftest(args: argparse.Namespace) -> int:
    from kiosk.commands.selftest import format_table, run_selftest

    path = args.config
    if args.sim and not Path(path).exists():
        path = EXAMPLE_CONFIG  # a machine without a kiosk config: the simulators need none
    cfg = load_config(path)
    if args.doors and not args.yes:
        n = len(cfg.locker.compartments)
        if not sys.stdin.isatty():
            raise KioskError(
                "--doors opens every compartment: confirm with --yes when not at a terminal"
            )
        answer = input(f"This opens all {n} compartments one at a time. Type yes to go on: ")
        if answer.strip().lower() != "yes":
            print("doors not pulsed")
            return 1
    checks = run_selftest(cfg, sim=args.sim, pulse_doors=args.doors)
    print(format_table(checks))
    return 0 if all(c.ok for c in checks) else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from kiosk.demo.main import run_demo  # no store server yet: it says if its extra is missing

    return run_demo(args.state_dir, args.port, args.tour, args.slow_factor)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk", description="Self-service loyalty kiosk")
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        help=f"configuration file (default {DEFAULT_CONFIG_PATH})",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check-config", help="validate the configuration file and exit")
    p.set_defaults(func=cmd_check_config)
    p = sub.add_parser("selftest", help="check camera, printer and doors; exit 1 on any failure")
    p.add_argument("--sim", action="store_true", help="run every check against the simulators")
    p.add_argument("--doors", action="store_true", help="also pulse each compartment (asks first)")
    p.add_argument("--yes", action="store_true", help="do not ask before pulsing the doors")
    p.set_defaults(func=cmd_selftest)
    p = sub.add_parser(
        "demo",
        help="the kiosk on simulators against a demo store server: a window with simulator "
        "keys, or (--tour, or no display) a screenshot tour of every screen",
    )
    p.add_argument(
        "--port",
        type=int,
        help="store server port on 127.0.0.1 (default 8080; with --tour any free port; 0: any)",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        help="where the store database, kiosk config, journal and receipts go "
        "(default: a new temp folder)",
    )
    p.add_argument(
        "--tour",
        type=Path,
        metavar="DIR",
        help="run offscreen through every screen and flow, write NN-step.png and receipts/ "
        "to DIR, exit 0 only if every step reached its screen",
    )
    p.add_argument(
        "--slow-factor",
        metavar="N",
        help="a slow machine or emulation: multiply the tour's wait bounds and the demo "
        "kiosk's intervals and timeouts by N >= 1 (default: $KIOSK_SLOW_FACTOR, else 1)",
    )
    p.set_defaults(func=cmd_demo)
    add_run(sub)
    add_subcommands(sub)
    add_idle(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except KioskError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
