"""The one reader of the journal's files (docs/journal.md): the snapshot plus the log after it,
replayed into tables.

- The journal itself (kiosk/storage/journal.py) replays strictly when it opens, under its
  lock: anything a crash cannot explain is ``JournalCorrupt``, and the journal goes to safe
  mode.
- ``kiosk logs`` and ``kiosk doctor`` read with :func:`read_journal`, without the lock and
  without writing a byte, while the kiosk runs: the files are read as they are (log first,
  then snapshot: a compaction in between only makes the snapshot newer, never leaves a gap),
  a half-written last frame is ignored, and a read that races a compaction is tried again.
  ``tolerant`` keeps what decodes of a quarantined journal.

The file names, the snapshot format and the safe-mode marker are named here, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.errors import JournalError
from kiosk.storage.journal_log import JournalCorrupt, read_snapshot, scan_frames

FORMAT = 1  # the snapshot's format
SNAPSHOT_NAME = "journal.snapshot"
LOG_NAME = "journal.log"
SAFE_MODE_NAME = "journal.safe-mode"  # present while in safe mode; holds the reason
QUARANTINE_PREFIX = "journal-corrupt-"  # + UTC time: a corrupt journal moved aside

Record = dict[str, Any]
Tables = dict[str, dict[str, Record]]
READ_ATTEMPTS = 5


@dataclass
class Replayed:
    """The tables after a snapshot and its log, at sequence number ``seq``."""

    tables: Tables
    seq: int
    problem: str | None = None  # tolerant: the first thing that was skipped


def replay(
    snapshot: Mapping[str, Any] | None,
    entries: Iterable[Mapping[str, Any]],
    *,
    snapshot_path: Path,
    log_path: Path,
    tolerant: bool = False,
) -> Replayed:
    """The tables after ``snapshot`` (None: there is none) and the log's ``entries``.

    Strict: the snapshot is format 1, its tables JSON objects, its ``seq`` a whole number; the
    log's entries are contiguous, and the first one applied is the snapshot's ``seq`` + 1
    (older ones are skipped: a compaction died before emptying the log); each is a ``put`` of
    an object or a ``del``, with a table and a key. Anything else is ``JournalCorrupt``.
    ``tolerant``: what does not fit is skipped and named in ``problem`` instead.
    """
    state = Replayed({}, 0)

    def bad(path: Path, why: str) -> None:
        if not tolerant:
            raise JournalCorrupt(path, 0, why)
        state.problem = state.problem or why

    if snapshot is not None:
        tables = snapshot.get("tables")
        if snapshot.get("format") != FORMAT or not isinstance(tables, dict):
            bad(snapshot_path, f"not a format-{FORMAT} journal snapshot")
            tables = tables if isinstance(tables, dict) else {}
        if not all(isinstance(rows, dict) for rows in tables.values()):
            bad(snapshot_path, "a snapshot table is not a JSON object")
        state.tables = {name: rows for name, rows in tables.items() if isinstance(rows, dict)}
        state.seq = _whole(snapshot.get("seq"), snapshot_path, bad)
    previous: int | None = None
    for index, entry in enumerate(entries):
        seq = _whole(entry.get("seq"), log_path, bad, default=None)
        if seq is None:
            continue
        expected = state.seq + 1 if previous is None else previous + 1
        # The first entry may be older than the snapshot: a compaction died before emptying
        # the log. Those entries are in the snapshot already and are skipped.
        if seq != expected and not (previous is None and seq < expected):
            bad(log_path, f"entry {index} has sequence {seq} where {expected} was expected "
                          "(entries are missing or out of order)")  # fmt: skip
        previous = seq
        if seq > state.seq:
            why = _apply(state.tables, entry)
            if why is not None:
                bad(log_path, why)
            state.seq = seq
    return state


def _whole(
    value: Any, path: Path, bad: Callable[[Path, str], None], default: int | None = 0
) -> Any:
    """``value`` if it is a sequence number, else ``default`` (after ``bad`` said so)."""
    if type(value) is not int or value < 0:
        bad(path, f"sequence number {value!r} is not a whole number")
        return default
    return value


def _apply(tables: Tables, entry: Mapping[str, Any]) -> str | None:
    """Apply one log entry; what is wrong with it, or None."""
    op, table, key = entry.get("op"), entry.get("table"), entry.get("key")
    if not isinstance(table, str) or not isinstance(key, str):
        return f"entry {entry.get('seq')} lacks a table or key"
    if op == "put" and isinstance(entry.get("record"), dict):
        tables.setdefault(table, {})[key] = entry["record"]
    elif op == "del":
        rows = tables.get(table, {})
        rows.pop(key, None)
        if not rows:
            tables.pop(table, None)
    else:
        return f"entry {entry.get('seq')} has an unknown operation"
    return None


# ---- the files, read by the tools ---------------------------------------------------------------


def safe_mode_reason(folder: Path) -> str | None:
    """The reason the safe-mode marker in ``folder`` holds; None outside safe mode."""
    try:
        return (folder / SAFE_MODE_NAME).read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        return None


def quarantined(folder: Path) -> list[Path]:
    """The corrupt journals moved aside in ``folder``, oldest first (named by UTC time)."""
    return sorted(folder.glob(QUARANTINE_PREFIX + "*"))


@dataclass
class JournalView:
    """The journal's tables as of one consistent moment, read without the lock."""

    folder: Path
    tables: Tables
    seq: int
    problem: str | None = None  # a quarantined folder: what stopped the read


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
    state = replay(
        snapshot, payloads, snapshot_path=folder / SNAPSHOT_NAME, log_path=log_path,
        tolerant=tolerant,
    )  # fmt: skip
    return JournalView(folder, state.tables, state.seq, problem or state.problem)


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
                "kiosk user (sudo kiosk logs ..., sudo kiosk doctor)"
            ) from None
        except JournalCorrupt as exc:
            if attempt == READ_ATTEMPTS - 1:
                raise JournalError(
                    f"the journal in {folder} does not read consistently ({exc.why} at byte "
                    f"{exc.offset} of {exc.path.name}) after {READ_ATTEMPTS} tries: run the "
                    "command again; if it persists, the journal is corrupt: run `kiosk doctor`"
                ) from exc
    raise AssertionError("unreachable")  # pragma: no cover
