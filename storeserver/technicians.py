"""Technician codes: short-lived signed codes (kind ``T``) that open one kiosk's diagnostics.

The code's subject is the kiosk id it was issued for, inside the signed payload, so a kiosk
refuses a code made for another; each kiosk also refuses a code it has seen before (its nonce
is journalled). Every code issued is recorded in ``technician_codes`` (who, when, which kiosk,
its nonce) and logged. ``issue_technician_code`` is the one way to make one: the command line
calls it now, an API route may later.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import sqlite3
from dataclasses import asdict, dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import codes, kiosks
from .clock import Clock, iso
from .errors import BadRequest, NotFound

log = logging.getLogger(__name__)

DEFAULT_MINUTES = 15
MAX_MINUTES = 60  # kiosks refuse a code that lives longer (codes.py's plausible window)


@dataclass(frozen=True)
class TechnicianCode:
    """An issued technician code and what was recorded about it."""

    code: str
    kiosk_id: str
    nonce: str
    issued_at: str
    expires_at: str
    issued_by: str

    def view(self) -> dict:
        return asdict(self)


def issue_technician_code(
    conn: sqlite3.Connection,
    clock: Clock,
    key: Ed25519PrivateKey,
    kiosk_id: str,
    minutes: int = DEFAULT_MINUTES,
    issued_by: str = "",
) -> TechnicianCode:
    """A code that opens the diagnostics of enrolled kiosk ``kiosk_id`` for ``minutes`` (1-60)
    and only once; recorded with ``issued_by`` (who asked for it)."""
    if type(minutes) is not int or not 1 <= minutes <= MAX_MINUTES:
        raise BadRequest(
            "invalid_minutes",
            f"a technician code lives 1 to {MAX_MINUTES} minutes, not {minutes!r}",
        )
    if not isinstance(issued_by, str) or not 1 <= len(issued_by.strip()) <= 64:
        raise BadRequest("invalid_issued_by", "say who the code is for or from (1-64 characters)")
    if not kiosks.is_enrolled(conn, kiosk_id):
        raise NotFound(
            "unknown_kiosk",
            f"no enrolled kiosk {kiosk_id!r}: check the id ('GET /v1/kiosks' lists them)",
        )
    now = clock.now().replace(microsecond=0)
    nonce = secrets.token_hex(8)
    text = codes.issue(
        key, codes.CodeKind.TECHNICIAN, kiosk_id, int(now.timestamp()), minutes * 60, nonce
    )
    issued = TechnicianCode(
        text, kiosk_id, nonce, iso(now), iso(now + dt.timedelta(minutes=minutes)), issued_by.strip()
    )
    conn.execute(
        "INSERT INTO technician_codes(nonce, kiosk_id, issued_by, issued_at, expires_at) "
        "VALUES (?,?,?,?,?)",
        (nonce, kiosk_id, issued.issued_by, issued.issued_at, issued.expires_at),
    )
    log.info(
        "technician code %s for kiosk %s issued by %s, valid until %s",
        nonce, kiosk_id, issued.issued_by, issued.expires_at,
    )  # fmt: skip
    return issued
