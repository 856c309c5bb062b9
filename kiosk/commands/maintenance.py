"""The technician's subcommands: ``kiosk doctor`` and ``kiosk logs TXN`` (docs/operations.md).

``kiosk/__main__.py`` registers them with ``add_subcommands(sub)``; both read the same
``--config`` as every other subcommand. Exit codes: 0 all well / found, 1 problems found /
nothing found, 2 a KioskError (printed by ``kiosk.__main__.main``).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from kiosk.commands.doctor import Probes, Runner, format_report, problems, run_command, run_doctor
from kiosk.commands.logs import format_story, transaction_story, zone
from kiosk.config import load_config
from kiosk.errors import KioskError


def cmd_doctor(args: argparse.Namespace, probes: Probes | None = None) -> int:
    if getattr(args, "no_service", False):
        probes = replace(probes or Probes(), service=False)
    checks = run_doctor(args.config, probes)
    print(f"kiosk doctor ({args.config})")
    print(format_report(checks))
    return 1 if problems(checks) else 0


def cmd_logs(args: argparse.Namespace, runner: Runner = run_command) -> int:
    state_dir, tz = args.state_dir, args.timezone
    if state_dir is None or tz is None:
        try:
            cfg = load_config(args.config)
        except KioskError as exc:
            raise KioskError(f"{exc} (or give --state-dir and --timezone)") from None
        state_dir = state_dir or cfg.kiosk.state_dir
        tz = tz or cfg.kiosk.timezone
    story = transaction_story(
        state_dir, args.txn, runner=runner, unit=args.unit, system_log=not args.journal_only
    )
    print(format_story(story, zone(tz)))
    return 0 if story.found else 1


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    """Register ``doctor`` and ``logs`` on the ``kiosk`` command's subparsers."""
    p = sub.add_parser(
        "doctor",
        help="check config, enrollment, server, clock, devices, service, disk, SD card, crashes; "
        "exit 1 with the problems and their fixes",
    )
    p.add_argument(
        "--no-service",
        action="store_true",
        help="leave out the systemd checks (service state, crashes and restarts): the kiosk "
        "runs outside systemd, as under kiosk-provision update --service-manager process",
    )
    p.set_defaults(func=cmd_doctor)
    p = sub.add_parser("logs", help="one transaction's story from the journal and the system log")
    p.add_argument(
        "txn", help="the transaction id (Txn on the receipt), or its first 8+ characters"
    )
    p.add_argument("--state-dir", type=Path, help="journal folder (default: kiosk.state_dir)")
    p.add_argument("--timezone", help="show times in this zone (default: kiosk.timezone)")
    p.add_argument("--unit", default="kiosk", help="systemd unit whose log is searched")
    p.add_argument(
        "--journal-only", action="store_true", help="do not search the system log (journalctl)"
    )
    p.set_defaults(func=cmd_logs)
