"""SQLite access: one connection per thread, WAL, serialised write transactions. A new file
is made at the head schema revision; an older or newer one is refused (storeserver/migrations)."""

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

from . import migrations

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"  # meta.schema_version, as releases before migrations wrote it


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
        try:
            self._create_or_check(self.connection())
        except BaseException:
            self.close()
            raise

    def _create_or_check(self, conn: sqlite3.Connection) -> None:
        """An empty file gets the head snapshot (schema.sql) stamped at the head revision, in
        one transaction; any other file must be at the head (migrations.check refuses it)."""
        if not migrations.is_empty(conn):
            migrations.check(conn, self.path)
            return
        schema = resources.files(__package__).joinpath("schema.sql").read_text()
        meta = (
            f"INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');"
        )
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{schema}\n{migrations.stamp_head_sql()}{meta}\nCOMMIT;"
            )
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        log.info("database %s: new, schema revision %s", self.path, migrations.head())

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
