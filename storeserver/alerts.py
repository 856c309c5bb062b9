"""Staff alerts: rows of the ``alerts`` table, counted per kiosk in ``GET /v1/kiosks``."""

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
