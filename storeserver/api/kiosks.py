"""Health, kiosk enrollment, heartbeats, outbox events and the kiosk list."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from .. import codes, kiosks, technicians
from ..clock import iso
from ..errors import BadRequest
from ..models import (
    EnrollRequest,
    ErrorBody,
    EventsRequest,
    HeartbeatRequest,
    TechnicianCodeRequest,
)
from ..store import Store
from .auth import API_VERSION, Allowed, Caller, Public, Role, store_of

log = logging.getLogger(__name__)
router = APIRouter()


class ReadyBody(BaseModel):
    status: str  # "ready" or "not_ready"
    reason: str | None = None


@router.get("/v1/health", tags=["kiosks"])
def health(_: Caller = Depends(Public()), store: Store = Depends(store_of)) -> dict:
    """Liveness and the server's clock (kiosks compare it with theirs)."""
    return {"status": "ok", "server_time": iso(store.clock.now()), "version": API_VERSION}


@router.get(
    "/v1/ready",
    tags=["kiosks"],
    response_model=ReadyBody,
    response_model_exclude_none=True,
    responses={503: {"model": ReadyBody, "description": "not_ready: the database did not answer"}},
)
def ready(_: Caller = Depends(Public()), store: Store = Depends(store_of)) -> Any:
    """Readiness (for a load balancer or systemd): 200 `ready` when the database answers a
    read, 503 `not_ready` with the reason otherwise. `/v1/health` is liveness only."""
    try:
        with store.db.reading() as conn:
            conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.Error as exc:
        log.warning("not ready: the database did not answer: %s", exc)
        body = ReadyBody(status="not_ready", reason=f"database: {exc}")
        return JSONResponse(body.model_dump(), status_code=503)
    return ReadyBody(status="ready")


@router.post(
    "/v1/kiosks/enroll",
    tags=["kiosks"],
    responses={
        403: {"model": ErrorBody, "description": "enrollment_code_wrong_kiosk"},
    },
)
def enroll(
    body: EnrollRequest, _: Caller = Depends(Public()), store: Store = Depends(store_of)
) -> dict:
    """Exchange a one-time enrollment code for a kiosk token and the member-code public key
    (`public_key`: the current one; `public_keys`: every key codes may be signed with now).

    A code enrolls only the kiosk id it was made for (else 403 `enrollment_code_wrong_kiosk`);
    an enrolled id only with a replacement code (else 409 `kiosk_already_enrolled`), whose use
    revokes the id's old token."""
    with store.db.transaction() as conn:
        tok = kiosks.enroll(conn, store.clock, body.enrollment_code, body.kiosk_id)
    return {
        "kiosk_id": body.kiosk_id,
        "token": tok,
        "public_key": codes.public_key_b64(store.signing_key),
        "public_keys": codes.public_keys_b64(store.verify_keys),
        "server_time": iso(store.clock.now()),
    }


@router.post("/v1/kiosks/heartbeat", tags=["kiosks"])
def heartbeat(
    body: HeartbeatRequest,
    caller: Caller = Depends(Allowed(Role.KIOSK)),
    store: Store = Depends(store_of),
) -> dict:
    """Store the kiosk's health (at most once a minute, at once when it changed beyond the
    sync worker's counters: docs/storeserver.md "Idle cost"); answer the server's clock, the
    revoked staff and the member-code public keys (`public_keys`, current first: a kiosk
    replaces its own with them, so a key rotation reaches every kiosk within a heartbeat)."""
    now, health = store.clock.now(), body.health.model_dump(exclude_unset=True)
    with store.db.reading() as conn:
        answer = kiosks.heartbeat_answer(conn, now)
        due = kiosks.heartbeat_due(conn, now, caller.name, health)
    if due:  # at most once a minute, or at once when the health changed materially
        with store.db.transaction() as conn:
            kiosks.record_heartbeat(conn, now, caller.name, health)
    return {**answer, "public_keys": codes.public_keys_b64(store.verify_keys)}


@router.post("/v1/kiosks/events", tags=["kiosks"])
def events(
    body: EventsRequest,
    caller: Caller = Depends(Allowed(Role.KIOSK)),
    store: Store = Depends(store_of),
) -> dict:
    """Outbox events, each applied once by event_id; offline redemptions may come back as conflicts."""
    ids = [e.event_id for e in body.events]
    if len(ids) != len(set(ids)):
        raise BadRequest("duplicate_event_id", "a batch must not repeat an event_id")
    results = kiosks.apply_events(
        store.redemptions, caller.name, [e.model_dump() for e in body.events], store.offline_rules()
    )
    return {"results": results}


@router.get("/v1/kiosks", tags=["staff"])
def list_kiosks(
    _: Caller = Depends(Allowed(Role.MANAGER, Role.ADMIN, Role.TECHNICIAN)),
    store: Store = Depends(store_of),
) -> dict:
    """Every kiosk with its last heartbeat and open alerts."""
    with store.db.reading() as conn:  # the kiosks and their alert counts: one snapshot
        return {"kiosks": kiosks.list_kiosks(conn)}


@router.get(
    "/v1/kiosks/{kiosk_id}/alerts",
    tags=["staff"],
    responses={404: {"model": ErrorBody, "description": "unknown_kiosk"}},
)
def kiosk_alerts(
    kiosk_id: str,
    handled: bool = False,
    _: Caller = Depends(Allowed(Role.MANAGER, Role.ADMIN, Role.TECHNICIAN)),
    store: Store = Depends(store_of),
) -> dict:
    """The kiosk's open staff alerts, newest first (at most 200; `handled=true`: the handled
    ones too): door alarms (a door forced or left open), faults, doors that need a check,
    refused offline redemptions. `detail` is what the kiosk or the server recorded. An alert
    stays open after its cause is gone (a door alarm after the door is shut) until staff mark
    it handled."""
    conn = store.db.connection()
    return {"alerts": kiosks.list_alerts(conn, kiosk_id, handled=handled)}


@router.post(
    "/v1/kiosks/{kiosk_id}/alerts/{alert_id}/handled",
    tags=["staff"],
    responses={404: {"model": ErrorBody, "description": "unknown_kiosk, unknown_alert"}},
)
def handle_alert(
    kiosk_id: str,
    alert_id: int,
    caller: Caller = Depends(Allowed(Role.MANAGER, Role.ADMIN, Role.TECHNICIAN)),
    store: Store = Depends(store_of),
) -> dict:
    """Mark one of the kiosk's alerts handled (by the caller's account, now); it leaves the
    open list and the open count. Marking it again changes nothing: the first mark stays."""
    with store.db.transaction() as conn:
        return kiosks.handle_alert(conn, store.clock, kiosk_id, alert_id, caller.actor)


@router.post("/v1/kiosks/{kiosk_id}/technician-codes", tags=["staff"])
def technician_code(
    kiosk_id: str,
    body: TechnicianCodeRequest,
    caller: Caller = Depends(Allowed(Role.ADMIN, Role.TECHNICIAN)),
    store: Store = Depends(store_of),
) -> dict:
    """A signed code that opens this kiosk's diagnostics once, for 1 to 60 minutes; recorded
    with the account that asked for it (404 `unknown_kiosk` for an id never enrolled)."""
    with store.db.transaction() as conn:
        issued = technicians.issue_technician_code(
            conn, store.clock, store.signing_key, kiosk_id, body.minutes, caller.actor
        )
    return issued.view()
