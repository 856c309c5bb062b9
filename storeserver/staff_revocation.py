"""What kiosks must refuse offline: staff and staff badges the store has revoked.

Kiosks check staff PINs against their own cache while the store server is unreachable, so the
server tells them, with every heartbeat answer, whom that cache must no longer let in:

- ``ids``: staff who may not sign in offline at all: disabled (``disable-staff``), or locked
  until a manager unlocks them (``staff_lockout.py``);
- ``badges_before``: ``{staff id: Unix seconds}`` for staff whose badges issued before that
  moment were revoked (``revoke-badges``: a lost card; the staff member keeps working with a
  newly printed one). Badges are not recorded when printed, so they cannot be revoked one by
  one: all those printed up to the revocation go.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3

from .clock import Clock
from .errors import NotFound

log = logging.getLogger(__name__)


def revoked(conn: sqlite3.Connection) -> dict:
    """``{"version", "ids", "badges_before"}``; the version is a digest of the rest, so a kiosk
    rewrites its copy only when it changed."""
    rows = conn.execute("SELECT id FROM staff WHERE active = 0 OR until_reset = 1 ORDER BY id")
    ids = [r["id"] for r in rows]
    rows = conn.execute(
        "SELECT id, badges_from FROM staff WHERE active = 1 AND badges_from IS NOT NULL ORDER BY id"
    )
    badges_before = {r["id"]: r["badges_from"] for r in rows}
    digest = hashlib.sha256(json.dumps([ids, badges_before], sort_keys=True).encode())
    return {"version": digest.hexdigest()[:16], "ids": ids, "badges_before": badges_before}


def revoke_badges(conn: sqlite3.Connection, clock: Clock, staff_id: str) -> int:
    """Revoke every badge of ``staff_id`` issued before now (Unix seconds, returned); a badge
    printed from now on works."""
    now_s = int(clock.now().timestamp())
    cur = conn.execute("UPDATE staff SET badges_from = ? WHERE id = ?", (now_s, staff_id))
    if cur.rowcount == 0:
        raise NotFound("unknown_staff", f"no staff with id {staff_id!r}")
    log.warning("badges of staff %s issued before %d revoked", staff_id, now_s)
    return now_s
