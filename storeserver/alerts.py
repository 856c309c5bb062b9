"""Staff alerts: rows of the ``alerts`` table, counted per kiosk in ``GET /v1/kiosks`` and
listed in ``GET /v1/kiosks/{kiosk_id}/alerts``. Nothing deletes them: an alert stays on record
(a door alarm stays after the kiosk's door is shut)."""

from __future__ import annotations

import json
import logging
import sqlite3

from .clock import Clock, iso

log = logging.getLogger(__name__)


def record(conn: sqlite3.Connection, clock: Clock, kiosk_id: str, kind: str, detail: dict) -> None:
    """An alert for staff, written in the caller's transaction (rolled back with it)."""
    log.warning("kiosk %s alert %s: %s", kiosk_id, kind, detail)
    conn.execute(
        "INSERT INTO alerts(kiosk_id, kind, at, detail) VALUES (?,?,?,?)",
        (kiosk_id, kind, iso(clock.now()), json.dumps(detail, ensure_ascii=False, default=str)),
    )


MAX_LISTED = 200  # newest first; older ones stay in the table


def listed(conn: sqlite3.Connection, kiosk_id: str, limit: int = MAX_LISTED) -> list[dict]:
    """The kiosk's alerts, newest first: id, kind, at and the detail as recorded."""
    rows = conn.execute(
        "SELECT id, kind, at, detail FROM alerts WHERE kiosk_id = ? ORDER BY id DESC LIMIT ?",
        (kiosk_id, limit),
    )
    return [
        {"id": r["id"], "kind": r["kind"], "at": r["at"], "detail": json.loads(r["detail"])}
        for r in rows
    ]
