"""``kiosk idle``: would restarting the kiosk now cut someone off? Exit 0 idle, 1 busy.

``kiosk-provision update`` asks it before it switches releases (docs/updates.md). Busy is:

- the running app's activity file (kiosk/services/activity.py) says a member session, a
  transaction or staff on screen, and its pid is alive (a file whose pid is gone is stale:
  not busy, but said);
- the journal holds a transaction that is not DONE or VOIDED (a restart would run crash
  recovery on it: void or finish it without the member);
- the journal holds a restock session while the app runs (staff are counting).

Read-only: the journal is read with its reader (kiosk/storage/journal_reader.py), without
the app's lock and without writing a byte.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.config import load_config
from kiosk.domain.transaction import TERMINAL, TxnState
from kiosk.services.activity import (
    DEFAULT_RUNTIME_DIR,
    FILE_NAME,
    Activity,
    ActivityRecord,
)
from kiosk.storage import tables
from kiosk.storage.journal_reader import read_journal

PidAlive = Callable[[int], bool]

_WHAT = {
    Activity.MEMBER: "a member session",
    Activity.TRANSACTION: "a transaction",
    Activity.STAFF: "staff on screen (restock or technician)",
}


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs and is a kiosk (a recycled pid of another program is not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc to ask: trust the pid
    return b"kiosk" in cmdline


@dataclass
class IdleReport:
    busy: list[str] = field(default_factory=list)  # why a restart now would cut someone off
    notes: list[str] = field(default_factory=list)  # said, but not busy
    app: ActivityRecord | None = None  # the running app's activity (None: not running)

    @property
    def idle(self) -> bool:
        return not self.busy


def _ago(since: float, now: float) -> str:
    at = dt.datetime.fromtimestamp(since).strftime("%H:%M:%S")
    return f"since {at} ({max(0, int(now - since))} s)"


def read_activity(folders: Iterable[Path]) -> tuple[ActivityRecord | None, Path | None, str]:
    """The first readable activity file in ``folders``; a problem text when one is bad."""
    for folder in folders:
        path = folder / FILE_NAME
        try:
            return ActivityRecord.from_json(path.read_text(encoding="utf-8")), path, ""
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            return None, path, f"activity file {path} unreadable ({exc}): taken as no activity"
    return None, None, ""


def check_idle(
    state_dir: Path,
    runtime_dirs: Iterable[Path],
    *,
    alive: PidAlive = pid_alive,
    now: Callable[[], float] = time.time,
) -> IdleReport:
    report = IdleReport()
    record, path, problem = read_activity([*runtime_dirs, state_dir])
    if problem:
        report.notes.append(problem)
    if record is not None and not alive(record.pid):
        report.notes.append(f"stale activity file {path}: pid {record.pid} is gone")
    elif record is not None:
        report.app = record
        if not record.activity.idle:
            txn = f" {record.txn_id}" if record.txn_id else ""
            what = _WHAT[record.activity] + txn
            report.busy.append(f"{what} {_ago(record.since, now())} (pid {record.pid})")
    if state_dir.is_dir():
        _journal(state_dir, report)
    else:
        report.notes.append(f"no journal folder {state_dir}")
    return report


def _journal(state_dir: Path, report: IdleReport) -> None:
    view = read_journal(state_dir)  # JournalError (a KioskError): exit 2, said why
    for txn_id, rec in sorted(view.tables.get(tables.TXN, {}).items()):
        try:
            state = TxnState(rec.get("state"))
        except ValueError:
            state = None
        if state not in TERMINAL:
            shown = state.name if state else repr(rec.get("state"))
            why = f"transaction {txn_id} in {shown} (unfinished in the journal"
            running = report.app is not None and not report.app.activity.idle
            why += ")" if running or report.app is None else "; it settles when the server answers)"
            report.busy.append(why)
    for sid, rec in sorted(view.tables.get(tables.RESTOCK, {}).items()):
        who, state = rec.get("staff_id", "?"), rec.get("state", "?")
        text = f"restock session {sid} of staff {who} ({state})"
        if report.app is not None:
            report.busy.append(text)
        else:
            report.notes.append(f"{text} left from before: the kiosk reports it at start-up")


def runtime_folders(given: Path | None) -> list[Path]:
    folders = [given] if given else []
    env = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    folders += [Path(env)] if env else []
    return [*folders, DEFAULT_RUNTIME_DIR]


def cmd_idle(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    report = check_idle(cfg.kiosk.state_dir, runtime_folders(args.runtime_dir))
    if report.idle:
        app = report.app
        said = f"attract screen, {_ago(app.since, time.time())}" if app else "app not running"
        print(f"idle: {said}")
    else:
        print("busy: " + "; ".join(report.busy))
    for note in report.notes:
        print(f"  note: {note}")
    return 0 if report.idle else 1


def add_idle(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "idle",
        help="exit 0 when restarting the kiosk now cuts nobody off, 1 (with why) when a member, "
        "a transaction or staff is busy",
    )
    p.add_argument(
        "--runtime-dir",
        type=Path,
        metavar="DIR",
        help=f"where the running app keeps {FILE_NAME} (default: $RUNTIME_DIRECTORY, "
        f"{DEFAULT_RUNTIME_DIR}, then kiosk.state_dir)",
    )
    p.set_defaults(func=cmd_idle)
