"""SQLite access: one connection per thread, WAL, serialised write transactions."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"


_STAFF_LOCKOUT_COLUMNS = (
    ("lock_level", "INTEGER NOT NULL DEFAULT 0"),
    ("last_lock_day", "TEXT"),
    ("fail_day", "TEXT"),
    ("fail_day_count", "INTEGER NOT NULL DEFAULT 0"),
    ("until_reset", "INTEGER NOT NULL DEFAULT 0"),
    ("badges_from", "INTEGER"),
)


def _add_columns(conn: sqlite3.Connection) -> None:
    """Columns added to schema 1 since it was first released, for files made before them
    (``CREATE TABLE IF NOT EXISTS`` leaves an existing table as it is)."""
    columns = {row["name"] for row in conn.execute("PRAGMA table_info(redemptions)")}
    if "seq" not in columns:
        log.info("database: adding redemptions.seq (the order of holds, for restock counts)")
        conn.execute("ALTER TABLE redemptions ADD COLUMN seq INTEGER")
        conn.execute("UPDATE redemptions SET seq = rowid")  # rows are never deleted: in order
    conn.execute("CREATE INDEX IF NOT EXISTS redemptions_seq ON redemptions(seq)")
    codes = {row["name"] for row in conn.execute("PRAGMA table_info(enrollment_codes)")}
    if "kiosk_id" not in codes:  # older codes name no kiosk: they are refused, make new ones
        log.info("database: adding enrollment_codes.kiosk_id and replace_existing")
        conn.execute("ALTER TABLE enrollment_codes ADD COLUMN kiosk_id TEXT")
        conn.execute(
            "ALTER TABLE enrollment_codes ADD COLUMN replace_existing INTEGER NOT NULL DEFAULT 0"
        )
    staff = {row["name"] for row in conn.execute("PRAGMA table_info(staff)")}
    for column, ddl in _STAFF_LOCKOUT_COLUMNS:
        if column not in staff:
            log.info("database: adding staff.%s (PIN lockout, badge revocation)", column)
            conn.execute(f"ALTER TABLE staff ADD COLUMN {column} {ddl}")
    alerts = {row["name"] for row in conn.execute("PRAGMA table_info(alerts)")}
    for column in ("handled_at", "handled_by"):
        if column not in alerts:
            log.info("database: adding alerts.%s (alerts staff marked handled)", column)
            conn.execute(f"ALTER TABLE alerts ADD COLUMN {column} TEXT")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS redemptions_compartment "
        "ON redemptions(kiosk_id, compartment, seq)"
    )


def _upgrade_accounts(conn: sqlite3.Connection) -> None:
    """Who-did-what for files made before accounts: points changes name their actor, phone
    numbers are one per member, and the old all-powerful staff tokens stop working."""
    columns = {row["name"] for row in conn.execute("PRAGMA table_info(points_changes)")}
    if "actor" not in columns:
        log.info("database: adding points_changes.actor (which account made each change)")
        conn.execute("ALTER TABLE points_changes ADD COLUMN actor TEXT")
    try:
        conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS members_phone ON members(phone)")
    except sqlite3.IntegrityError:
        log.warning(
            "database: several members share a phone number; new registrations are still "
            "refused a used number (storeserver/members.py), merge the duplicates by hand"
        )
    old = conn.execute(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'staff_tokens'"
    ).fetchone()[0]
    if old and conn.execute("SELECT COUNT(*) FROM staff_tokens").fetchone()[0]:
        log.warning(
            "database: staff tokens from before accounts are no longer accepted: make an "
            "account per till or person ('storeserver add-account', then 'storeserver token')"
        )


def _owner_only(path: str) -> None:
    """The database, its WAL and SHM readable by the owner only (they hold every member's
    points and the staff PIN hashes). SQLite gives the WAL and SHM the database file's mode, so
    the file is made 0600 before SQLite opens it; wider existing files are narrowed."""
    if path in ("", ":memory:") or path.startswith("file:"):
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (path, path + "-wal", path + "-shm", path + "-journal"):
        try:
            mode = stat.S_IMODE(os.stat(name).st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            os.chmod(name, mode & 0o700)
            log.warning("database file %s was mode %04o: now %04o (owner only)",
                        name, mode, mode & 0o700)  # fmt: skip


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
        _owner_only(self.path)
        conn = self.connection()
        conn.executescript(resources.files(__package__).joinpath("schema.sql").read_text())
        _add_columns(conn)
        _upgrade_accounts(conn)
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

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: one consistent snapshot, no write lock, nothing written (a
        deferred BEGIN that only SELECTs never takes SQLite's write lock). Inside a write
        transaction it joins that one."""
        conn = self.connection()
        if self._local.after is not None or conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN DEFERRED")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")  # a read-only transaction: commit and rollback are alike

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
