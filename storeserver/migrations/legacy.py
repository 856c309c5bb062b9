"""Revision 0001's work: the schema as releases before migrations left it.

Those releases made ``schema.sql`` with ``CREATE TABLE IF NOT EXISTS`` and patched older files
at every open with the functions below; revision 0001 runs the same steps once (on an empty
file they only make the baseline), inside the migration's transaction, then checks the file
holds the baseline schema. Rows are tuples here (a migration's own connection).
"""

from __future__ import annotations

import logging
import sqlite3
from importlib import resources

from ..errors import MigrationFailed
from .schema_shape import Shape, shape_of

log = logging.getLogger(__name__)

BASELINE_SQL = "baseline.sql"

_STAFF_LOCKOUT_COLUMNS = (
    ("lock_level", "INTEGER NOT NULL DEFAULT 0"),
    ("last_lock_day", "TEXT"),
    ("fail_day", "TEXT"),
    ("fail_day_count", "INTEGER NOT NULL DEFAULT 0"),
    ("until_reset", "INTEGER NOT NULL DEFAULT 0"),
    ("badges_from", "INTEGER"),
)
_KIOSK_EVENTS_COLUMNS = "event_id, kiosk_id, kind, at, payload, result, received_at"


def statements(script: str) -> list[str]:
    """The SQL statements of ``script``, one by one (``executescript`` would commit first)."""
    out, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    if pending.strip() and not pending.strip().startswith("--"):
        out.append(pending.strip())
    return out


def baseline_script() -> str:
    return resources.files(__package__).joinpath(BASELINE_SQL).read_text(encoding="utf-8")


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _add_columns(conn: sqlite3.Connection) -> None:
    """Columns added to schema 1 after it was first released."""
    if "seq" not in _columns(conn, "redemptions"):
        log.info("database: adding redemptions.seq (the order of holds, for restock counts)")
        conn.execute("ALTER TABLE redemptions ADD COLUMN seq INTEGER")
        conn.execute("UPDATE redemptions SET seq = rowid")  # rows are never deleted: in order
    conn.execute("CREATE INDEX IF NOT EXISTS redemptions_seq ON redemptions(seq)")
    if "kiosk_id" not in _columns(conn, "enrollment_codes"):  # older codes are refused
        log.info("database: adding enrollment_codes.kiosk_id and replace_existing")
        conn.execute("ALTER TABLE enrollment_codes ADD COLUMN kiosk_id TEXT")
        conn.execute(
            "ALTER TABLE enrollment_codes ADD COLUMN replace_existing INTEGER NOT NULL DEFAULT 0"
        )
    staff = _columns(conn, "staff")
    for column, ddl in _STAFF_LOCKOUT_COLUMNS:
        if column not in staff:
            log.info("database: adding staff.%s (PIN lockout, badge revocation)", column)
            conn.execute(f"ALTER TABLE staff ADD COLUMN {column} {ddl}")
    alerts = _columns(conn, "alerts")
    for column in ("handled_at", "handled_by"):
        if column not in alerts:
            log.info("database: adding alerts.%s (alerts staff marked handled)", column)
            conn.execute(f"ALTER TABLE alerts ADD COLUMN {column} TEXT")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS redemptions_compartment "
        "ON redemptions(kiosk_id, compartment, seq)"
    )


def _upgrade_accounts(conn: sqlite3.Connection) -> None:
    """Points changes name their actor; phone numbers are one per member."""
    if "actor" not in _columns(conn, "points_changes"):
        log.info("database: adding points_changes.actor (which account made each change)")
        conn.execute("ALTER TABLE points_changes ADD COLUMN actor TEXT")
    try:
        conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS members_phone ON members(phone)")
    except sqlite3.IntegrityError as exc:
        raise MigrationFailed(
            "several members share a phone number, so the unique index members_phone cannot "
            "be made: merge the duplicates by hand (SELECT phone FROM members GROUP BY phone "
            "HAVING COUNT(*) > 1), then run the migration again"
        ) from exc
    old = conn.execute(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'staff_tokens'"
    ).fetchone()[0]
    if old and conn.execute("SELECT COUNT(*) FROM staff_tokens").fetchone()[0]:
        log.warning(
            "database: staff tokens from before accounts are no longer accepted: make an "
            "account per till or person ('storeserver add-account', then 'storeserver token')"
        )


def _key_events_by_kiosk(conn: sqlite3.Connection) -> None:
    """``kiosk_events`` keyed by ``event_id`` alone gets the key (kiosk_id, event_id): SQLite
    cannot change a key in place, so the table is rebuilt (create, copy, drop, rename)."""
    key = {row[1]: row[5] for row in conn.execute("PRAGMA table_info(kiosk_events)")}
    if not (key.get("event_id") == 1 and key.get("kiosk_id") == 0):
        return
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


def bring_to_baseline(conn: sqlite3.Connection) -> None:
    """The baseline tables (those missing), then the old releases' upgrades."""
    for statement in statements(baseline_script()):
        conn.execute(statement)
    _add_columns(conn)
    _upgrade_accounts(conn)
    _key_events_by_kiosk(conn)


def baseline_shape() -> Shape:
    """The schema revision 0001 gives an empty database."""
    conn = sqlite3.connect(":memory:")
    try:
        bring_to_baseline(conn)
        return shape_of(conn)
    finally:
        conn.close()


def check_baseline(conn: sqlite3.Connection) -> None:
    """MigrationFailed unless ``conn`` holds every baseline table and index, as the baseline
    has them (columns compared by name: older files gained theirs at the end). Tables the
    baseline lacks (an old release's ``staff_tokens``) are left, and logged."""
    want, got = baseline_shape(), shape_of(conn)
    differ = want.differences(got)
    if differ:
        raise MigrationFailed(
            "after the legacy upgrades the database still differs from revision 0001 "
            f"(baseline): {'; '.join(differ)[:200]}"
        )
    extra = sorted(set(got.tables) - set(want.tables))
    if extra:
        log.info("database: tables outside the baseline kept as they are: %s", ", ".join(extra))
