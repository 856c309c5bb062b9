"""``storeserver migrate``: back the file up (SQLite's online backup), then Alembic's upgrade
to head in one transaction, run from code (script_location is this package; no alembic.ini)."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, NullPool, create_engine, event
from sqlalchemy.engine import URL

from ..errors import DatabaseAhead, MigrationFailed
from . import BEFORE_MIGRATIONS, current, head, is_empty, revisions

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    before: str | None  # None: made before migrations
    after: str
    applied: list[str] = field(default_factory=list)  # "0002 message", oldest first
    backup: Path | None = None


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files(__package__)))
    return cfg


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def engine_for(path: str) -> Engine:
    """An engine whose transactions are SQLite's own BEGIN IMMEDIATE ... COMMIT, so a whole
    upgrade (DDL included) commits or rolls back as one (pysqlite alone would not begin before
    DDL)."""
    engine = create_engine(URL.create("sqlite", database=path), poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA busy_timeout = 10000")

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def backup(path: str, target: str) -> Path:
    """A consistent copy of ``path`` (the online backup API: safe while others read), made
    owner-only before a byte is written; a name already taken gets .2, .3, ..."""
    base = Path(f"{path}.pre-{target}.bak")
    dest, n = base, 1
    while True:
        try:
            os.close(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            break
        except FileExistsError:
            n += 1
            dest = base.with_name(f"{base.name[: -len('.bak')]}.{n}.bak")
    src, dst = sqlite3.connect(path), sqlite3.connect(dest)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    return dest


@contextlib.contextmanager
def _reading(path: str) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        yield conn
    finally:
        conn.close()


def pending(before: str | None) -> list[str]:
    """The revisions an upgrade from ``before`` applies, oldest first, with their messages."""
    scripts = script_directory()
    steps = reversed(list(scripts.iterate_revisions("head", before or "base")))
    return [f"{s.revision} {(s.doc or '').splitlines()[0]}".strip() for s in steps]


def migrate(path: str, say: Callable[[str], None] = log.info) -> Outcome:
    """Upgrade the file at ``path`` to head; MigrationFailed / DatabaseAhead if it cannot."""
    if not os.path.isfile(path):
        raise MigrationFailed(f"no database file {path} (a new one is made by the other commands)")
    with _reading(path) as conn:
        if is_empty(conn):
            raise MigrationFailed(f"{path} is empty: not a store database")
        before = current(conn)
    if before == head():
        return Outcome(before, before)
    if before is not None and before not in revisions():
        raise DatabaseAhead(
            f"database {path} is at schema revision {before}, newer than this release knows "
            f"(its newest is {head()}): a newer release wrote it; nothing was changed"
        )
    say(f"database {path}: schema revision {before or BEFORE_MIGRATIONS} -> {head()}")
    outcome = Outcome(before, head(), pending(before), backup(path, head()))
    say(f"backup (owner-only) at {outcome.backup}")
    for step in outcome.applied:
        say(f"applying {step}")
    upgrade_to_head(path)
    say(f"database {path} is at schema revision {head()}")
    return outcome


def upgrade_to_head(path: str) -> None:
    """Alembic's upgrade to head, all revisions in one transaction: it commits whole or not
    at all (MigrationFailed)."""
    cfg = alembic_config()
    engine = engine_for(path)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except MigrationFailed as exc:
        raise MigrationFailed(f"migrating {path} failed, nothing was changed: {exc}") from exc
    except Exception as exc:  # alembic, SQLAlchemy and sqlite3 errors: the txn rolled back
        raise MigrationFailed(
            f"migrating {path} failed, nothing was changed ({type(exc).__name__}: {exc})"
        ) from exc
    finally:
        engine.dispose()
