"""Reading the journal without its lock and without writing a byte (``kiosk logs``,
``kiosk doctor``): the files are read as they are (log first, then snapshot: a compaction in
between only makes the snapshot newer, never leaves a gap), a half-written last frame is
ignored, and a read that races a compaction is tried again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.errors import JournalError
from kiosk.storage.journal import LOG_NAME, SNAPSHOT_NAME
from kiosk.storage.journal_log import JournalCorrupt, read_snapshot, scan_frames

Record = dict[str, Any]
READ_ATTEMPTS = 5


@dataclass
class JournalView:
    """The journal's tables as of one consistent moment, read without the lock."""

    folder: Path
    tables: dict[str, dict[str, Record]]
    seq: int
    problem: str | None = None  # a quarantined folder: what stopped the read


def _apply(tables: dict[str, dict[str, Record]], entry: Mapping[str, Any]) -> None:
    table, key = entry.get("table"), entry.get("key")
    if not isinstance(table, str) or not isinstance(key, str):
        return
    if entry.get("op") == "put" and isinstance(entry.get("record"), dict):
        tables.setdefault(table, {})[key] = entry["record"]
    elif entry.get("op") == "del":
        tables.get(table, {}).pop(key, None)


def _read_once(folder: Path, tolerant: bool) -> JournalView:
    log_path = folder / LOG_NAME
    try:
        data = log_path.read_bytes()  # the log first, then the snapshot (see the docstring)
    except FileNotFoundError:
        data = b""
    problem = None
    try:
        payloads = scan_frames(data, log_path).payloads
    except JournalCorrupt as exc:
        if not tolerant:
            raise
        payloads, problem = scan_frames(data[: exc.offset], log_path).payloads, exc.why
    try:
        snapshot, _ = read_snapshot(folder / SNAPSHOT_NAME)
    except JournalCorrupt as exc:
        if not tolerant:
            raise
        snapshot, problem = None, exc.why
    snapshot = snapshot or {}
    tables = snapshot.get("tables") if isinstance(snapshot.get("tables"), dict) else {}
    seq = snapshot.get("seq") if type(snapshot.get("seq")) is int else 0
    for entry in payloads:
        at = entry.get("seq")
        if type(at) is not int or at <= seq:
            continue  # already in the snapshot (a compaction died before emptying the log)
        if at != seq + 1 and not tolerant:
            raise JournalCorrupt(log_path, 0, f"entry {at} follows {seq}: read during a compaction")  # fmt: skip
        _apply(tables, entry)
        seq = at
    return JournalView(folder, tables, seq, problem)


def read_journal(folder: Path, *, tolerant: bool = False) -> JournalView:
    """The journal in ``folder`` without taking its lock or writing anything.

    ``tolerant``: keep what decodes (a quarantined journal); else JournalError when the files
    stay inconsistent after a few tries (they are corrupt, not just busy).
    """
    for attempt in range(READ_ATTEMPTS):
        try:
            return _read_once(folder, tolerant)
        except PermissionError as exc:
            raise JournalError(
                f"cannot read the journal in {folder} ({exc.strerror}): run as root or as the "
                "kiosk user (sudo kiosk logs ...)"
            ) from None
        except JournalCorrupt as exc:
            if attempt == READ_ATTEMPTS - 1:
                raise JournalError(
                    f"the journal in {folder} does not read consistently ({exc.why} at byte "
                    f"{exc.offset} of {exc.path.name}) after {READ_ATTEMPTS} tries: run the "
                    "command again; if it persists, the journal is corrupt: run `kiosk doctor`"
                ) from exc
    raise AssertionError("unreachable")  # pragma: no cover
