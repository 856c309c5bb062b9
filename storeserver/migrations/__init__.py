"""Schema revisions of the store database (Alembic, run from code: ``runner.py``).

A new file is made from ``storeserver/schema.sql`` (the head snapshot) and stamped at
``head()``; an existing file must be at the head to be opened: ``check`` refuses one that is
behind (``storeserver migrate`` upgrades it) or ahead (a newer release wrote it). This module
reads the revision with ``sqlite3`` alone: opening a store never imports SQLAlchemy.
"""

from __future__ import annotations

import re
import sqlite3
from functools import cache
from importlib import resources

from ..errors import DatabaseAhead, DatabaseBehind

VERSION_TABLE = "alembic_version"
VERSION_TABLE_SQL = (  # as Alembic makes it on SQLite
    "CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL, "
    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
)
_REVISION_FILE = re.compile(r"^(\d{4})_\w+\.py$")
BEFORE_MIGRATIONS = "none (made before migrations)"


@cache
def revisions() -> tuple[str, ...]:
    """Every revision this release carries, oldest first (``versions/NNNN_name.py``: the
    history is linear and numbered; tests/storeserver/test_migrations.py checks Alembic agrees)."""
    names = (p.name for p in resources.files(__package__).joinpath("versions").iterdir())
    return tuple(sorted(m.group(1) for n in names if (m := _REVISION_FILE.match(n))))


def head() -> str:
    return revisions()[-1]


def is_empty(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0


def current(conn: sqlite3.Connection) -> str | None:
    """The file's revision; None for a file made before migrations (or an empty one)."""
    has_table = conn.execute(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (VERSION_TABLE,)
    ).fetchone()[0]
    if not has_table:
        return None
    row = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
    return None if row is None else row[0]


def stamp_head_sql() -> str:
    """SQL that records the head revision in a file just made from the head snapshot."""
    return (
        f"{VERSION_TABLE_SQL};\nINSERT INTO {VERSION_TABLE}(version_num) SELECT '{head()}' "
        f"WHERE NOT EXISTS (SELECT 1 FROM {VERSION_TABLE});\n"
    )


def migrate_command(path: str) -> str:
    return f"storeserver migrate --db {path}"


def check(conn: sqlite3.Connection, path: str) -> None:
    """DatabaseBehind / DatabaseAhead unless the file is at this release's head."""
    rev = current(conn)
    if rev == head():
        return
    if rev is None or rev in revisions():
        raise DatabaseBehind(
            f"database {path} is at schema revision {rev or BEFORE_MIGRATIONS}; this release "
            f"needs {head()}. Stop the store server, run '{migrate_command(path)}' (it backs "
            "the file up first), then start it again"
        )
    raise DatabaseAhead(
        f"database {path} is at schema revision {rev}, newer than this release knows (its "
        f"newest is {head()}): a newer release wrote it. Run that release, or restore the "
        "backup 'storeserver migrate' made before it upgraded the file (<db>.pre-<rev>.bak)"
    )
