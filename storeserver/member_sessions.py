"""Member sessions: what lets a kiosk act for one member, and only the member whose code it resolved.

``POST /v1/members/resolve`` opens one: an opaque random token (kept only as its SHA-256),
bound to the kiosk that resolved the code, the code's member and its nonce, and valid for
``StoreSettings.member_session_s``. A hold or spin names the member and carries the token
(header ``X-Member-Session``); :func:`require` refuses it with 403 for any other kiosk, any
other member, or once it expired, and says the same whether the member exists or not, so a
kiosk token alone can neither spend a member's points nor learn which member ids exist.
"""

from __future__ import annotations

import datetime as dt
import secrets
import sqlite3

from .accounts import token_sha256
from .clock import iso
from .errors import ApiError

HEADER = "X-Member-Session"
DEFAULT_SESSION_S = 600  # a member's visit at the kiosk: a scan, a few taps, a payment
TOKEN_PREFIX = "ms_"
MAX_TOKEN_CHARS = 128


class MemberSessionRefused(ApiError):
    """403: no session, or one that does not belong to this kiosk and member (or expired)."""

    status = 403


def open_session(
    conn: sqlite3.Connection,
    now: dt.datetime,
    kiosk_id: str,
    member_id: str,
    nonce: str,
    ttl_s: int,
) -> dict:
    """A new session for the member whose code (``nonce``) this kiosk resolved; a retry of
    the same resolve replaces the earlier session of that code (its answer was lost)."""
    conn.execute("DELETE FROM member_sessions WHERE expires_at <= ?", (iso(now),))
    conn.execute("DELETE FROM member_sessions WHERE kiosk_id = ? AND nonce = ?", (kiosk_id, nonce))
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = now + dt.timedelta(seconds=ttl_s)
    conn.execute(
        "INSERT INTO member_sessions(token_sha256, kiosk_id, member_id, nonce, created_at, "
        "expires_at) VALUES (?,?,?,?,?,?)",
        (token_sha256(token), kiosk_id, member_id, nonce, iso(now), iso(expires)),
    )
    return {"token": token, "expires_at": iso(expires), "header": HEADER}


def require(
    conn: sqlite3.Connection, now: dt.datetime, kiosk_id: str, member_id: str, token: str | None
) -> None:
    """Refuse (403) unless ``token`` is a live session of this kiosk for ``member_id``.

    One message for every mismatch: the answer must not tell a kiosk whether the member
    exists, nor whose session it holds."""
    if not token:
        raise MemberSessionRefused(
            "member_session_required",
            f"send the member session from POST /v1/members/resolve in the {HEADER} header: "
            "scan the member's code first",
        )
    row = None
    if len(token) <= MAX_TOKEN_CHARS:
        row = conn.execute(
            "SELECT kiosk_id, member_id, expires_at FROM member_sessions WHERE token_sha256 = ?",
            (token_sha256(token),),
        ).fetchone()
    if (
        row is None
        or row["kiosk_id"] != kiosk_id
        or row["member_id"] != member_id
        or row["expires_at"] <= iso(now)
    ):
        raise MemberSessionRefused(
            "member_session_invalid",
            "this member session is not valid for this member at this kiosk (expired, or "
            "for another member or kiosk): scan the member's code again",
        )
