"""Kiosk enrollment, bearer tokens, outbox events and heartbeats."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import secrets
import sqlite3

from . import catalog, offline
from .clock import Clock, iso, parse_iso
from .errors import ApiError, BadRequest, Unauthorized
from .holds import Redemptions

log = logging.getLogger(__name__)

ENROLLMENT_CODE_VALIDITY = dt.timedelta(hours=24)
KIOSK_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,31}$")
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_enrollment_code(conn: sqlite3.Connection, clock: Clock) -> str:
    """A one-time code a technician types into kiosk-provision (valid 24 h)."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    code = "-".join(raw[i : i + 4] for i in range(0, 12, 4))
    now = clock.now()
    conn.execute(
        "INSERT INTO enrollment_codes(code_sha256, created_at, expires_at) VALUES (?,?,?)",
        (_sha(code), iso(now), iso(now + ENROLLMENT_CODE_VALIDITY)),
    )
    return code


def enroll(conn: sqlite3.Connection, clock: Clock, code: str, kiosk_id: str) -> str:
    """Exchange a one-time code for a kiosk token (re-enrolling an id rotates its token)."""
    if not KIOSK_ID.match(kiosk_id):
        raise BadRequest("invalid_kiosk_id", f"kiosk_id {kiosk_id!r} must match {KIOSK_ID.pattern}")
    row = conn.execute(
        "SELECT * FROM enrollment_codes WHERE code_sha256 = ?", (_sha(code.strip().upper()),)
    ).fetchone()
    if row is None:
        raise Unauthorized(
            "bad_enrollment_code", "unknown enrollment code: run 'storeserver enroll-code'"
        )
    if row["used_by"] is not None:
        raise Unauthorized(
            "enrollment_code_used", "this enrollment code was already used: make a new one"
        )
    if parse_iso(row["expires_at"]) <= clock.now():
        raise Unauthorized(
            "enrollment_code_expired", "this enrollment code has expired: make a new one"
        )
    token = secrets.token_urlsafe(32)
    conn.execute(
        "UPDATE enrollment_codes SET used_by = ? WHERE code_sha256 = ?",
        (kiosk_id, row["code_sha256"]),
    )
    conn.execute(
        "INSERT INTO kiosks(id, token_sha256, enrolled_at) VALUES (?,?,?) "
        "ON CONFLICT(id) DO UPDATE SET token_sha256 = excluded.token_sha256, enrolled_at = excluded.enrolled_at",
        (kiosk_id, _sha(token), iso(clock.now())),
    )
    return token


def new_staff_token(conn: sqlite3.Connection, clock: Clock, name: str) -> str:
    token = "stf_" + secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO staff_tokens(token_sha256, name, created_at) VALUES (?,?,?)",
        (_sha(token), name, iso(clock.now())),
    )
    return token


def kiosk_for_token(conn: sqlite3.Connection, token: str) -> str:
    row = conn.execute("SELECT id FROM kiosks WHERE token_sha256 = ?", (_sha(token),)).fetchone()
    if row is None:
        raise Unauthorized("bad_token", "unknown kiosk token: re-enroll the kiosk with a new code")
    return row["id"]


def staff_for_token(conn: sqlite3.Connection, token: str) -> str:
    row = conn.execute(
        "SELECT name FROM staff_tokens WHERE token_sha256 = ?", (_sha(token),)
    ).fetchone()
    if row is None:
        raise Unauthorized(
            "bad_token", "unknown staff token: make one with 'storeserver staff-token'"
        )
    return row["name"]


def heartbeat(conn: sqlite3.Connection, clock: Clock, kiosk_id: str, health: dict) -> dict:
    now = iso(clock.now())
    conn.execute(
        "UPDATE kiosks SET last_seen = ?, health = ? WHERE id = ?",
        (now, json.dumps(health, ensure_ascii=False, sort_keys=True), kiosk_id),
    )
    return {"server_time": now}


def list_kiosks(conn: sqlite3.Connection) -> list[dict]:
    return [
        {
            "id": r["id"],
            "enrolled_at": r["enrolled_at"],
            "last_seen": r["last_seen"],
            "health": json.loads(r["health"]) if r["health"] else None,
            "open_alerts": conn.execute(
                "SELECT COUNT(*) FROM alerts WHERE kiosk_id = ?", (r["id"],)
            ).fetchone()[0],
        }
        for r in conn.execute("SELECT * FROM kiosks ORDER BY id")
    ]


def apply_events(
    redemptions: Redemptions, kiosk_id: str, events: list[dict], rules: offline.OfflineRules
) -> list[dict]:
    """Apply a batch of outbox events, each once; a replayed event gets its first result again.
    Offline redemptions are checked against ``rules`` (storeserver/offline.py)."""
    results = []
    clock = redemptions.clock
    with redemptions.db.transaction() as conn:
        redemptions.sweep(conn)
        for event in events:
            stored = conn.execute(
                "SELECT kiosk_id, result FROM kiosk_events WHERE event_id = ?", (event["event_id"],)
            ).fetchone()
            if stored is not None:
                result = json.loads(stored["result"])
                if stored["kiosk_id"] != kiosk_id:
                    result = {"status": "rejected", "reason": "event_id_reused"}
                results.append({"event_id": event["event_id"], **result})
                continue
            conn.execute("SAVEPOINT event")
            try:
                result = _apply_one(redemptions, conn, kiosk_id, event, rules)
                conn.execute("RELEASE SAVEPOINT event")
            except ApiError as exc:
                conn.execute("ROLLBACK TO SAVEPOINT event")
                conn.execute("RELEASE SAVEPOINT event")
                status = "conflict" if event["kind"] == "offline_redemption" else "rejected"
                result = {"status": status, "reason": exc.code, "message": exc.message}
                if status == "conflict":
                    kept = {**event, "payload": _bounded(event.get("payload") or {})}
                    _alert(conn, clock, kiosk_id, "offline_conflict", {"event": kept, **result})
                    if not isinstance(exc, offline.Unverified):  # a genuine code: it is out
                        number = (event.get("payload") or {}).get("compartment")
                        offline.gift_out(conn, kiosk_id, number)
            conn.execute(
                "INSERT INTO kiosk_events(event_id, kiosk_id, kind, at, payload, result, received_at) "
                "VALUES (?,?,?,?,?,?,?)",
                (
                    event["event_id"],
                    kiosk_id,
                    event["kind"],
                    event["at"],
                    json.dumps(_bounded(event.get("payload") or {}), ensure_ascii=False),
                    json.dumps(result),
                    iso(clock.now()),
                ),
            )
            results.append({"event_id": event["event_id"], **result})
    return results


def _apply_one(
    redemptions: Redemptions,
    conn: sqlite3.Connection,
    kiosk_id: str,
    event: dict,
    rules: offline.OfflineRules,
) -> dict:
    kind, payload = event["kind"], event.get("payload") or {}
    clock = redemptions.clock
    if kind == "inventory":
        number, count = _int(payload, "compartment", 1, 99), _int(payload, "count", 0, 10_000)
        sku = payload.get("sku")
        if sku is not None and not isinstance(sku, str):
            raise BadRequest("invalid_payload", "payload.sku must be a string or null")
        return _count(conn, kiosk_id, number, sku, count, payload)
    if kind in ("fault", "door_alarm", "needs_check"):
        _alert(conn, clock, kiosk_id, kind, payload)
        return {"status": "applied"}
    if kind == "offline_redemption":
        return offline.redeem(redemptions, conn, rules, kiosk_id, event)
    raise BadRequest("unknown_event_kind", f"event kind {kind!r} is not known to this server")


MAX_OPEN_HOLDS = 50  # a kiosk runs one transaction at a time: a few at most are unsettled
_TXN_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def _count(
    conn: sqlite3.Connection, kiosk_id: str, number: int, sku: str | None, count: int, p: dict
) -> dict:
    """A restock count: the compartment holds ``count`` less the holds made after the count
    (docs/restock.md). ``after_hold_seq`` is the last hold the kiosk had seen when staff
    counted; a count without it (an older kiosk) is taken as of now."""
    if "after_hold_seq" not in p:
        catalog.set_compartment(conn, kiosk_id, number, sku, count)
        return {"status": "applied", "stock": count}
    seen = _int(p, "after_hold_seq", 0, 2**53)
    open_holds = p.get("open_holds", [])
    if not (
        isinstance(open_holds, list)
        and len(open_holds) <= MAX_OPEN_HOLDS
        and all(isinstance(t, str) and _TXN_ID.match(t) for t in open_holds)
    ):
        raise BadRequest(
            "invalid_payload",
            f"payload.open_holds must be a list of at most {MAX_OPEN_HOLDS} transaction ids",
        )
    since = catalog.holds_after_count(conn, kiosk_id, number, seen, open_holds)
    stock = max(0, count - since)
    if since > count:  # more gifts left than staff counted: the count or a door was wrong
        log.warning(
            "kiosk %s compartment %d: counted %d, %d held since; stock set to 0",
            kiosk_id, number, count, since,
        )  # fmt: skip
    catalog.set_compartment(conn, kiosk_id, number, sku, stock)
    return {"status": "applied", "stock": stock}


MAX_KEPT_PAYLOAD = 4096  # bytes of an event's payload kept in the event log and alerts


def _bounded(payload: dict) -> dict:
    """The payload as kept on record: a huge one (a 1 MB txn_id) only by its size."""
    size = len(json.dumps(payload, ensure_ascii=False).encode("utf-8"))
    return payload if size <= MAX_KEPT_PAYLOAD else {"oversized_payload_bytes": size}


def _alert(conn: sqlite3.Connection, clock: Clock, kiosk_id: str, kind: str, detail: dict) -> None:
    log.warning("kiosk %s alert %s: %s", kiosk_id, kind, detail)
    conn.execute(
        "INSERT INTO alerts(kiosk_id, kind, at, detail) VALUES (?,?,?,?)",
        (kiosk_id, kind, iso(clock.now()), json.dumps(detail, ensure_ascii=False, default=str)),
    )


def _int(payload: dict, key: str, lo: int, hi: int) -> int:
    value = payload.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise BadRequest(
            "invalid_payload", f"payload.{key} must be an integer from {lo} to {hi}, got {value!r}"
        )
    return value
