"""SQLite access: one connection per thread, WAL, serialised write transactions."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"


def _add_columns(conn: sqlite3.Connection) -> None:
    """Columns added to schema 1 since it was first released, for files made before them
    (``CREATE TABLE IF NOT EXISTS`` leaves an existing table as it is)."""
    columns = {row["name"] for row in conn.execute("PRAGMA table_info(redemptions)")}
    if "seq" not in columns:
        log.info("database: adding redemptions.seq (the order of holds, for restock counts)")
        conn.execute("ALTER TABLE redemptions ADD COLUMN seq INTEGER")
        conn.execute("UPDATE redemptions SET seq = rowid")  # rows are never deleted: in order
    conn.execute("CREATE INDEX IF NOT EXISTS redemptions_seq ON redemptions(seq)")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS redemptions_compartment "
        "ON redemptions(kiosk_id, compartment, seq)"
    )


_KIOSK_EVENTS_COLUMNS = "event_id, kiosk_id, kind, at, payload, result, received_at"


def _key_events_by_kiosk(conn: sqlite3.Connection) -> None:
    """Files made when ``kiosk_events.event_id`` alone was the primary key (kiosk B's event id
    collided with kiosk A's) get the key (kiosk_id, event_id): SQLite cannot change a key in
    place, so the table is rebuilt (create, copy, drop, rename) in one transaction."""

    def event_id_alone() -> bool:
        key = {r["name"]: r["pk"] for r in conn.execute("PRAGMA table_info(kiosk_events)")}
        return key.get("event_id") == 1 and key.get("kiosk_id") == 0

    if not event_id_alone():
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if event_id_alone():  # another process may have migrated it meanwhile
            n = conn.execute("SELECT COUNT(*) FROM kiosk_events").fetchone()[0]
            log.info("database: keying kiosk_events by (kiosk_id, event_id) (%d events)", n)
            conn.execute(
                "CREATE TABLE kiosk_events_by_kiosk (event_id TEXT NOT NULL, kiosk_id TEXT NOT "
                "NULL, kind TEXT NOT NULL, at TEXT NOT NULL, payload TEXT NOT NULL, result TEXT "
                "NOT NULL, received_at TEXT NOT NULL, PRIMARY KEY (kiosk_id, event_id))"
            )
            conn.execute(
                f"INSERT INTO kiosk_events_by_kiosk ({_KIOSK_EVENTS_COLUMNS}) "
                f"SELECT {_KIOSK_EVENTS_COLUMNS} FROM kiosk_events ORDER BY rowid"
            )
            conn.execute("DROP TABLE kiosk_events")
            conn.execute("ALTER TABLE kiosk_events_by_kiosk RENAME TO kiosk_events")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class Database:
    """Owns the SQLite file. Each thread gets its own connection; writers use BEGIN IMMEDIATE.

    ``after_commit`` callbacks queued inside a transaction run only once it has committed,
    so notifications never announce a change that was rolled back.
    """

    def __init__(self, path: str | Path, *, wal: bool = True) -> None:
        self.path = str(path)
        self._wal = wal
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        # Writers of this process queue here rather than in SQLite's busy handler, which polls
        # with sleeps of up to 100 ms; BEGIN IMMEDIATE still guards against other processes.
        self._write_lock = threading.Lock()
        conn = self.connection()
        conn.executescript(resources.files(__package__).joinpath("schema.sql").read_text())
        _add_columns(conn)
        _key_events_by_kiosk(conn)
        conn.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
        )

    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA foreign_keys = ON")
            if self._wal:
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            self._local.conn = conn
            self._local.after = None
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; nested use joins the outer one."""
        conn = self.connection()
        if self._local.after is not None:
            yield conn
            return
        self._local.after = []
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                self._local.after = None
                raise
            conn.execute("COMMIT")
        callbacks, self._local.after = self._local.after, None
        for callback in callbacks:
            try:
                callback()
            except Exception:  # a failed notification must not fail the committed request
                log.exception("after-commit callback failed")

    def after_commit(self, callback: Callable[[], None]) -> None:
        after = getattr(self._local, "after", None)
        if after is None:
            callback()
        else:
            after.append(callback)

    def get_meta(self, key: str) -> str | None:
        row = self.connection().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row["value"]

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()
