"""The journal owner: one object holds the kiosk's durable records behind a lock.

Design (docs/journal.md has the long form): the state lives in memory as plain dicts
(`table -> key -> record`), and every change goes first to the durable append-only log
(journal_log.JournalLog: one frame, one fsync) and only then to memory. At start-up the
snapshot is loaded and the log replayed by journal_reader.replay, strictly (the same replay
`kiosk logs` and `kiosk doctor` read the journal with); now and then the state is compacted
into a new snapshot and the log emptied.

Why not a TinyDB Storage: TinyDB hands Storage.write() the whole database on every change, and
even with MemoryStorage its Table rebuilds the whole table dict on every write (measured here:
0.08 ms per upsert at 100 records, 1.9 ms at 10,000 - ten fsyncs' worth). A durable step could
then never be flat in the journal's size. So TinyDB contributes its query language instead:
`find(table, Query().state == "HELD")` evaluates any tinydb Query (or any predicate) on the
records, while the journal keeps writes O(size of the change).

Corruption (anything a crash cannot explain) never deletes a byte: the files are moved into a
`journal-corrupt-<time>` folder, a sticky `journal.safe-mode` marker is written, and the
journal opens empty and read-only with `safe_mode` True and a technician-readable reason.
"""

from __future__ import annotations

import copy
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from kiosk.errors import JournalError
from kiosk.storage.atomic import fsync_dir
from kiosk.storage.journal_log import (
    JournalCorrupt,
    JournalLog,
    encode_frame,
    read_snapshot,
    write_snapshot,
)
from kiosk.storage.journal_reader import (  # the file names stay importable from here
    FORMAT,
    LOG_NAME,
    QUARANTINE_PREFIX,
    SAFE_MODE_NAME,
    SNAPSHOT_NAME,
    replay,
    safe_mode_reason,
)

log = logging.getLogger(__name__)

LOCK_NAME = "journal.lock"
MAX_RECORD_BYTES = 4096
COMPACT_MIN_BYTES = 256 * 1024

Record = dict[str, Any]
Predicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class JournalStats:
    """Sizes for benches, tests and the technician screen."""

    seq: int
    records: int
    log_entries: int
    log_bytes: int
    snapshot_bytes: int
    bytes_appended: int
    compactions: int


class Journal:
    """The kiosk's crash-safe record store. Create it with `Journal.open(state_dir)`.

    Every method is thread-safe. `put` and `delete` return only after the change is on disk
    (one appended frame, one fsync). Records are JSON objects; reads return copies.
    """

    def __init__(self, state_dir: Path, *, compact_min_bytes: int, max_record_bytes: int) -> None:
        self.state_dir = state_dir
        self._lock = threading.Lock()
        self._tables: dict[str, dict[str, Record]] = {}
        self._seq = 0
        self._log: JournalLog | None = None
        self._lock_fd: int | None = None
        self._snapshot_bytes = 0
        self._compactions = 0
        self._compact_min_bytes = compact_min_bytes
        self._max_record_bytes = max_record_bytes
        self._safe_mode_reason: str | None = None
        self.quarantine_dir: Path | None = None

    # --- opening ------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        state_dir: str | os.PathLike[str],
        *,
        safe_mode_on_corrupt: bool = True,
        compact_min_bytes: int = COMPACT_MIN_BYTES,
        max_record_bytes: int = MAX_RECORD_BYTES,
    ) -> Journal:
        """Load the snapshot, replay the log, and take the journal's lock.

        A corrupt journal is moved aside and the journal opens in safe mode, or, with
        `safe_mode_on_corrupt=False` (config `kiosk.safe_mode_on_corrupt_journal`), left in
        place and reported as JournalError.
        """
        journal = cls(
            Path(state_dir),
            compact_min_bytes=compact_min_bytes,
            max_record_bytes=max_record_bytes,
        )
        journal._take_lock()
        try:
            journal._load(safe_mode_on_corrupt)
        except BaseException:
            journal.close()
            raise
        return journal

    def _take_lock(self) -> None:
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise JournalError(
                f"cannot use journal folder {self.state_dir} ({exc.strerror}): create it and "
                "make it writable by the kiosk user (config kiosk.state_dir)"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise JournalError(
                f"the journal in {self.state_dir} is already open in another process or object: "
                "stop the other kiosk process (systemctl stop kiosk) before starting this one"
            ) from exc
        self._lock_fd = fd

    def _load(self, safe_mode_on_corrupt: bool) -> None:
        reason = safe_mode_reason(self.state_dir)
        if reason is not None:
            self._safe_mode_reason = reason
            log.error(
                "journal stays in safe mode until a technician clears it: %s",
                self.state_dir / SAFE_MODE_NAME,
            )
            return
        tmp = self.state_dir / (SNAPSHOT_NAME + ".tmp")
        if tmp.exists():  # a compaction died before os.replace: never authoritative
            tmp.unlink()
        try:
            self._replay()
        except JournalCorrupt as exc:
            self._tables, self._seq = {}, 0
            if self._log is not None:
                self._log.close()
                self._log = None
            if not safe_mode_on_corrupt:
                raise
            self._enter_safe_mode(exc)

    def _replay(self) -> None:
        snapshot_path = self.state_dir / SNAPSHOT_NAME
        snapshot, self._snapshot_bytes = read_snapshot(snapshot_path)
        self._log = JournalLog.open(self.state_dir / LOG_NAME)
        state = replay(
            snapshot, self._log.replayed, snapshot_path=snapshot_path, log_path=self._log.path
        )
        self._tables, self._seq = state.tables, state.seq
        self._log.replayed = []
        log.info(
            "journal %s opened: %d records, seq %d, %d log entries",
            self.state_dir,
            sum(len(t) for t in self._tables.values()),
            self._seq,
            self._log.entries,
        )

    def _enter_safe_mode(self, exc: JournalCorrupt) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        folder = self.state_dir / f"{QUARANTINE_PREFIX}{stamp}"
        suffix = 1
        while folder.exists():
            suffix += 1
            folder = self.state_dir / f"{QUARANTINE_PREFIX}{stamp}-{suffix}"
        reason = (
            f"journal corrupt: {exc.why} in {exc.path.name} at byte {exc.offset}. The journal "
            f"files were moved to {folder} (nothing deleted). Pending transactions may need a "
            "manual check against the store server; when done, delete "
            f"{self.state_dir / SAFE_MODE_NAME} and restart the kiosk."
        )
        # The sticky marker goes first: a crash while moving files must not end safe mode.
        marker = self.state_dir / SAFE_MODE_NAME
        marker.write_text(reason + "\n", encoding="utf-8")
        folder.mkdir()
        for name in (SNAPSHOT_NAME, LOG_NAME):
            if (self.state_dir / name).exists():
                os.replace(self.state_dir / name, folder / name)
        (folder / "REASON.txt").write_text(reason + "\n", encoding="utf-8")
        fsync_dir(folder)
        fsync_dir(self.state_dir)
        self._safe_mode_reason, self.quarantine_dir = reason, folder
        log.error("%s", reason)

    # --- state --------------------------------------------------------------------------------

    @property
    def safe_mode(self) -> bool:
        """True when the journal was found corrupt: read-only and empty until cleared."""
        return self._safe_mode_reason is not None

    @property
    def safe_mode_reason(self) -> str | None:
        """What a technician should know and do, or None outside safe mode."""
        return self._safe_mode_reason

    @staticmethod
    def clear_safe_mode(state_dir: str | os.PathLike[str]) -> bool:
        """Remove the safe-mode marker after a technician's review; True if there was one."""
        marker = Path(state_dir) / SAFE_MODE_NAME
        try:
            marker.unlink()
        except FileNotFoundError:
            return False
        fsync_dir(Path(state_dir))
        return True

    def stats(self) -> JournalStats:
        """Current sequence number, record count and file sizes."""
        with self._lock:
            lg = self._log
            return JournalStats(
                seq=self._seq,
                records=sum(len(t) for t in self._tables.values()),
                log_entries=lg.entries if lg else 0,
                log_bytes=lg.size if lg else 0,
                snapshot_bytes=self._snapshot_bytes,
                bytes_appended=lg.bytes_appended if lg else 0,
                compactions=self._compactions,
            )

    # --- writes -------------------------------------------------------------------------------

    def _writable_log(self) -> JournalLog:
        if self._safe_mode_reason is not None:
            raise JournalError(f"journal is in safe mode and read-only: {self._safe_mode_reason}")
        if self._log is None:
            raise JournalError(f"journal in {self.state_dir} is closed: open it again")
        return self._log

    def put(self, table: str, key: str, record: Mapping[str, Any]) -> None:
        """Insert or replace `record` under (table, key); returns once it is durable."""
        _check_name(table, key)
        if not isinstance(record, Mapping):
            raise JournalError(f"journal record for {table}/{key} must be a dict, not {record!r}")
        with self._lock:
            lg = self._writable_log()
            entry = {"seq": self._seq + 1, "op": "put", "table": table, "key": key}
            entry["record"] = dict(record)
            frame = encode_frame(entry)
            if len(frame) > self._max_record_bytes:
                raise JournalError(
                    f"journal record {table}/{key} is {len(frame)} bytes, over the "
                    f"{self._max_record_bytes}-byte limit: keep receipts, images and logs out of "
                    "the journal and store a reference instead"
                )
            lg.append(frame)
            # Memory gets what replay will see (tuples become lists, ...), not the caller's dict.
            self._tables.setdefault(table, {})[key] = json.loads(frame[18:])["record"]
            self._seq += 1
            self._maybe_compact(lg)

    def delete(self, table: str, key: str) -> bool:
        """Remove (table, key) durably; False (and nothing written) if it was not there."""
        _check_name(table, key)
        with self._lock:
            lg = self._writable_log()
            rows = self._tables.get(table)
            if rows is None or key not in rows:
                return False
            lg.append(encode_frame({"seq": self._seq + 1, "op": "del", "table": table, "key": key}))
            del rows[key]
            if not rows:
                del self._tables[table]
            self._seq += 1
            self._maybe_compact(lg)
            return True

    def _maybe_compact(self, lg: JournalLog) -> None:
        # Compacting once the log outgrows the snapshot keeps the amortised cost of a step at
        # most one more frame's worth of bytes, whatever the journal's size (docs/journal.md).
        if lg.size >= max(self._compact_min_bytes, self._snapshot_bytes):
            self._compact_locked(lg)

    def compact(self) -> None:
        """Write the state as a new snapshot and empty the log (also done automatically)."""
        with self._lock:
            self._compact_locked(self._writable_log())

    def _compact_locked(self, lg: JournalLog) -> None:
        started = time.perf_counter()
        payload = {"format": FORMAT, "seq": self._seq, "tables": self._tables}
        self._snapshot_bytes = write_snapshot(self.state_dir / SNAPSHOT_NAME, payload)
        # A crash here leaves log entries the snapshot already holds; replay skips them by seq.
        lg.reset()
        self._compactions += 1
        log.info(
            "journal compacted: seq %d, snapshot %d bytes, %.1f ms",
            self._seq,
            self._snapshot_bytes,
            (time.perf_counter() - started) * 1000,
        )

    # --- reads --------------------------------------------------------------------------------

    def get(self, table: str, key: str) -> Record | None:
        """A copy of the record under (table, key), or None."""
        with self._lock:
            record = self._tables.get(table, {}).get(key)
            return copy.deepcopy(record) if record is not None else None

    def all(self, table: str) -> dict[str, Record]:
        """Copies of every record in `table`, by key."""
        with self._lock:
            return copy.deepcopy(self._tables.get(table, {}))

    def find(self, table: str, cond: Predicate) -> dict[str, Record]:
        """Copies of the records in `table` that match a tinydb Query or any predicate."""
        with self._lock:
            rows = self._tables.get(table, {})
            return {k: copy.deepcopy(r) for k, r in rows.items() if cond(r)}

    def tables(self) -> list[str]:
        """Names of the tables that hold at least one record."""
        with self._lock:
            return sorted(self._tables)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(t) for t in self._tables.values())

    # --- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the log and release the folder's lock; idempotent."""
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None
            if self._lock_fd is not None:
                fd, self._lock_fd = self._lock_fd, None
                os.close(fd)  # releases the flock

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _check_name(table: str, key: str) -> None:
    if not isinstance(table, str) or not table or not isinstance(key, str) or not key:
        raise JournalError(
            f"journal table and key must be non-empty strings, got {table!r}/{key!r}"
        )
