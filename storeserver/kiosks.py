"""Kiosk enrollment, bearer tokens, outbox events and heartbeats."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
import sqlite3

from . import alerts, catalog, event_payloads, offline, staff_revocation
from .accounts import token_sha256
from .clock import Clock, iso, parse_iso
from .errors import ApiError, BadRequest, NotFound, Unauthorized, shown
from .holds import Redemptions

log = logging.getLogger(__name__)

ENROLLMENT_CODE_VALIDITY = dt.timedelta(hours=24)
KIOSK_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,31}$")
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _check_kiosk_id(kiosk_id: str) -> None:
    if not KIOSK_ID.match(kiosk_id):
        raise BadRequest(
            "invalid_kiosk_id", f"kiosk_id {shown(kiosk_id)} must match {KIOSK_ID.pattern}"
        )


def is_enrolled(conn: sqlite3.Connection, kiosk_id: str) -> bool:
    return conn.execute("SELECT 1 FROM kiosks WHERE id = ?", (kiosk_id,)).fetchone() is not None


def new_enrollment_code(
    conn: sqlite3.Connection, clock: Clock, kiosk_id: str, *, replace: bool = False
) -> str:
    """A one-time code for kiosk ``kiosk_id`` that a technician types into kiosk-provision
    (valid 24 h). An enrolled id needs ``replace`` (an admin's ``enroll-code --replace``):
    the enrollment with it then locks the kiosk's old token out."""
    _check_kiosk_id(kiosk_id)
    if is_enrolled(conn, kiosk_id) and not replace:
        raise ApiError(
            "kiosk_already_enrolled",
            f"kiosk {kiosk_id} is already enrolled: to replace it (its current token stops "
            f"working when the new code is used) run 'storeserver enroll-code --kiosk "
            f"{kiosk_id} --replace'",
            409,
        )
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    code = "-".join(raw[i : i + 4] for i in range(0, 12, 4))
    now = clock.now()
    conn.execute(
        "INSERT INTO enrollment_codes(code_sha256, created_at, expires_at, kiosk_id, "
        "replace_existing) VALUES (?,?,?,?,?)",
        (token_sha256(code), iso(now), iso(now + ENROLLMENT_CODE_VALIDITY), kiosk_id, int(replace)),
    )
    log.info("enrollment code made for kiosk %s%s", kiosk_id, " (replacement)" if replace else "")
    return code


def enroll(conn: sqlite3.Connection, clock: Clock, code: str, kiosk_id: str) -> str:
    """Exchange a one-time code for a kiosk token. The code enrolls only the kiosk id it was
    made for, and an enrolled id only if it was made with ``replace`` (the old token then
    stops working). A refusal changes nothing: the code stays usable for its own kiosk."""
    _check_kiosk_id(kiosk_id)
    row = conn.execute(
        "SELECT * FROM enrollment_codes WHERE code_sha256 = ?",
        (token_sha256(code.strip().upper()),),
    ).fetchone()
    if row is None:
        raise Unauthorized(
            "bad_enrollment_code",
            f"unknown enrollment code: run 'storeserver enroll-code --kiosk {kiosk_id}'",
        )
    if row["used_by"] is not None:
        raise Unauthorized(
            "enrollment_code_used", "this enrollment code was already used: make a new one"
        )
    if parse_iso(row["expires_at"]) <= clock.now():
        raise Unauthorized(
            "enrollment_code_expired", "this enrollment code has expired: make a new one"
        )
    if row["kiosk_id"] != kiosk_id:
        log.warning("enrollment as %s refused: the code is for %s", kiosk_id, row["kiosk_id"])
        raise ApiError(
            "enrollment_code_wrong_kiosk",
            f"this enrollment code is not for kiosk {kiosk_id}: make one for it with "
            f"'storeserver enroll-code --kiosk {kiosk_id}'",
            403,
        )
    replacing = is_enrolled(conn, kiosk_id)
    if replacing and not row["replace_existing"]:
        raise ApiError(
            "kiosk_already_enrolled",
            f"kiosk {kiosk_id} is already enrolled: to replace it an admin runs "
            f"'storeserver enroll-code --kiosk {kiosk_id} --replace'",
            409,
        )
    token = secrets.token_urlsafe(32)
    conn.execute(
        "UPDATE enrollment_codes SET used_by = ? WHERE code_sha256 = ?",
        (kiosk_id, row["code_sha256"]),
    )
    conn.execute(
        "INSERT INTO kiosks(id, token_sha256, enrolled_at) VALUES (?,?,?) "
        "ON CONFLICT(id) DO UPDATE SET token_sha256 = excluded.token_sha256, enrolled_at = excluded.enrolled_at",
        (kiosk_id, token_sha256(token), iso(clock.now())),
    )
    if replacing:
        log.warning(
            "kiosk %s re-enrolled with a replacement code: its old token is revoked", kiosk_id
        )
    return token


def kiosk_for_token(conn: sqlite3.Connection, token: str) -> str:
    row = conn.execute(
        "SELECT id FROM kiosks WHERE token_sha256 = ?", (token_sha256(token),)
    ).fetchone()
    if row is None:
        raise Unauthorized("bad_token", "unknown kiosk token: re-enroll the kiosk with a new code")
    return row["id"]


# A heartbeat's row is rewritten at most once a minute, unless its health changed materially:
# anything but the sync worker's running measurements below (which drift every beat) counts,
# so a door alarm, paper out, a camera fault or a new version is on record at once.
HEARTBEAT_WRITE_INTERVAL = dt.timedelta(minutes=1)
DRIFTING_SYNC_FIELDS = frozenset({"outbox", "alerts", "clock_skew_s", "failures"})


def _material(health: dict) -> dict:
    """The health without the fields that change every beat without meaning anything new."""
    sync = health.get("sync")
    if not isinstance(sync, dict):
        return health
    kept = {k: v for k, v in sync.items() if k not in DRIFTING_SYNC_FIELDS}
    return {**health, "sync": kept}


def heartbeat_due(conn: sqlite3.Connection, now: dt.datetime, kiosk_id: str, health: dict) -> bool:
    """Whether this heartbeat must be written: the last one is a minute old (or none), or
    the health changed materially (``_material``). A read."""
    row = conn.execute("SELECT last_seen, health FROM kiosks WHERE id = ?", (kiosk_id,)).fetchone()
    if row is None or row["last_seen"] is None or row["health"] is None:
        return True
    if now - parse_iso(row["last_seen"]) >= HEARTBEAT_WRITE_INTERVAL:
        return True
    return _material(json.loads(row["health"])) != _material(health)


def record_heartbeat(
    conn: sqlite3.Connection, now: dt.datetime, kiosk_id: str, health: dict
) -> None:
    conn.execute(
        "UPDATE kiosks SET last_seen = ?, health = ? WHERE id = ?",
        (iso(now), json.dumps(health, ensure_ascii=False, sort_keys=True), kiosk_id),
    )


def heartbeat_answer(conn: sqlite3.Connection, now: dt.datetime) -> dict:
    """What every heartbeat gets back, written or not: the server's clock and the kiosks'
    copy of who may not sign in offline."""
    return {"server_time": iso(now), "revoked_staff": staff_revocation.revoked(conn)}


def list_kiosks(conn: sqlite3.Connection) -> list[dict]:
    """Every kiosk with its latest heartbeat (the kiosk's own row: heartbeats keep no
    history) and its open alerts, counted in one pass over the alerts (not one per kiosk:
    the alerts table has no index on kiosk_id)."""
    open_alerts = dict(
        conn.execute(
            "SELECT kiosk_id, COUNT(*) FROM alerts WHERE handled_at IS NULL GROUP BY kiosk_id"
        ).fetchall()
    )
    return [
        {
            "id": r["id"],
            "enrolled_at": r["enrolled_at"],
            "last_seen": r["last_seen"],
            "health": json.loads(r["health"]) if r["health"] else None,
            "open_alerts": open_alerts.get(r["id"], 0),
        }
        for r in conn.execute(
            "SELECT id, enrolled_at, last_seen, health FROM kiosks ORDER BY id"
        ).fetchall()
    ]


def list_alerts(conn: sqlite3.Connection, kiosk_id: str, *, handled: bool = False) -> list[dict]:
    """An enrolled kiosk's open staff alerts (``handled``: all), newest first (NotFound
    ``unknown_kiosk``)."""
    _known(conn, kiosk_id)
    return alerts.listed(conn, kiosk_id, handled=handled)


def handle_alert(
    conn: sqlite3.Connection, clock: Clock, kiosk_id: str, alert_id: int, actor: str
) -> dict:
    _known(conn, kiosk_id)
    return alerts.handle(conn, clock, kiosk_id, alert_id, actor)


def _known(conn: sqlite3.Connection, kiosk_id: str) -> None:
    if not is_enrolled(conn, kiosk_id):
        raise NotFound(
            "unknown_kiosk", f"no enrolled kiosk {shown(kiosk_id)}: 'GET /v1/kiosks' lists them"
        )


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
                "SELECT result FROM kiosk_events WHERE kiosk_id = ? AND event_id = ?",
                (kiosk_id, event["event_id"]),
            ).fetchone()
            if stored is not None:  # an event id is the kiosk's own: another's never collides
                results.append({"event_id": event["event_id"], **json.loads(stored["result"])})
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
    kind = event["kind"]
    try:
        payload = event_payloads.parse_payload(kind, event.get("payload") or {})
    except ApiError as exc:
        if kind == "offline_redemption":  # nothing proves a gift left: move no stock either
            raise offline.Unverified(exc.code, exc.message) from None
        raise
    if isinstance(payload, event_payloads.InventoryPayload):
        return _count(conn, kiosk_id, payload)
    if isinstance(payload, event_payloads.OfflineRedemptionPayload):
        # the typed model bounded it; offline.py checks the code, the window and the caps
        return offline.redeem(redemptions, conn, rules, kiosk_id, event["at"], payload)
    _alert(conn, redemptions.clock, kiosk_id, kind, payload.model_dump(exclude_none=True))
    return {"status": "applied"}


def _count(conn: sqlite3.Connection, kiosk_id: str, p: event_payloads.InventoryPayload) -> dict:
    """A restock count: the compartment holds ``count`` less the holds made after the count
    (docs/restock.md). ``after_hold_seq`` is the last hold the kiosk had seen when staff
    counted; a count without it (an older kiosk) is taken as of now."""
    number, sku, count = p.compartment, p.sku, p.count
    if p.after_hold_seq is None:
        catalog.set_compartment(conn, kiosk_id, number, sku, count)
        return {"status": "applied", "stock": count}
    since = catalog.holds_after_count(conn, kiosk_id, number, p.after_hold_seq, p.open_holds)
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
    alerts.record(conn, clock, kiosk_id, kind, detail)
