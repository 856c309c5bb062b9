"""Staff alerts: rows of the ``alerts`` table. An alert is open until staff mark it handled
(``handle``: who and when are kept, the row is never deleted), so a door alarm stays after the
kiosk's door is shut. ``GET /v1/kiosks`` counts the open ones per kiosk and
``GET /v1/kiosks/{kiosk_id}/alerts`` lists them."""

from __future__ import annotations

import json
import logging
import sqlite3

from .clock import Clock, iso
from .errors import NotFound

log = logging.getLogger(__name__)


def record(conn: sqlite3.Connection, clock: Clock, kiosk_id: str, kind: str, detail: dict) -> None:
    """An alert for staff, written in the caller's transaction (rolled back with it)."""
    log.warning("kiosk %s alert %s: %s", kiosk_id, kind, detail)
    conn.execute(
        "INSERT INTO alerts(kiosk_id, kind, at, detail) VALUES (?,?,?,?)",
        (kiosk_id, kind, iso(clock.now()), json.dumps(detail, ensure_ascii=False, default=str)),
    )


MAX_LISTED = 200  # newest first; older ones stay in the table


def count_open(conn: sqlite3.Connection, kiosk_id: str) -> int:
    return conn.execute(
        "SELECT COUNT(*) FROM alerts WHERE kiosk_id = ? AND handled_at IS NULL", (kiosk_id,)
    ).fetchone()[0]


def listed(
    conn: sqlite3.Connection, kiosk_id: str, *, handled: bool = False, limit: int = MAX_LISTED
) -> list[dict]:
    """The kiosk's open alerts (``handled``: the handled ones too), newest first."""
    where = "" if handled else " AND handled_at IS NULL"
    rows = conn.execute(
        f"SELECT * FROM alerts WHERE kiosk_id = ?{where} ORDER BY id DESC LIMIT ?",
        (kiosk_id, limit),
    )
    return [_view(r) for r in rows]


def handle(
    conn: sqlite3.Connection, clock: Clock, kiosk_id: str, alert_id: int, actor: str
) -> dict:
    """Mark one of the kiosk's alerts handled by ``actor``; again: the first mark stays."""
    conn.execute(
        "UPDATE alerts SET handled_at = ?, handled_by = ? "
        "WHERE id = ? AND kiosk_id = ? AND handled_at IS NULL",
        (iso(clock.now()), actor, alert_id, kiosk_id),
    )
    row = conn.execute(
        "SELECT * FROM alerts WHERE id = ? AND kiosk_id = ?", (alert_id, kiosk_id)
    ).fetchone()
    if row is None:
        raise NotFound(
            "unknown_alert",
            f"kiosk {kiosk_id} has no alert {alert_id}: 'GET /v1/kiosks/{kiosk_id}/alerts' lists them",
        )
    log.info("kiosk %s alert %d (%s) handled by %s", kiosk_id, alert_id, row["kind"],
             row["handled_by"])  # fmt: skip
    return _view(row)


def _view(row: sqlite3.Row) -> dict:
    return {
        "id": row["id"],
        "kind": row["kind"],
        "at": row["at"],
        "detail": json.loads(row["detail"]),
        "handled_at": row["handled_at"],
        "handled_by": row["handled_by"],
    }
