"""Health, kiosk enrollment, heartbeats, outbox events and the kiosk list."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from .. import codes, kiosks
from ..clock import iso
from ..errors import BadRequest
from ..models import EnrollRequest, EventsRequest, HeartbeatRequest
from ..store import Store
from .auth import API_VERSION, Allowed, Caller, Public, Role, store_of

router = APIRouter()


@router.get("/v1/health", tags=["kiosks"])
def health(_: Caller = Depends(Public()), store: Store = Depends(store_of)) -> dict:
    """Liveness and the server's clock (kiosks compare it with theirs)."""
    return {"status": "ok", "server_time": iso(store.clock.now()), "version": API_VERSION}


@router.post("/v1/kiosks/enroll", tags=["kiosks"])
def enroll(
    body: EnrollRequest, _: Caller = Depends(Public()), store: Store = Depends(store_of)
) -> dict:
    """Exchange a one-time enrollment code for a kiosk token and the member-code public key."""
    with store.db.transaction() as conn:
        tok = kiosks.enroll(conn, store.clock, body.enrollment_code, body.kiosk_id)
    return {
        "kiosk_id": body.kiosk_id,
        "token": tok,
        "public_key": codes.public_key_b64(store.signing_key),
        "server_time": iso(store.clock.now()),
    }


@router.post("/v1/kiosks/heartbeat", tags=["kiosks"])
def heartbeat(
    body: HeartbeatRequest,
    caller: Caller = Depends(Allowed(Role.KIOSK)),
    store: Store = Depends(store_of),
) -> dict:
    with store.db.transaction() as conn:
        return kiosks.heartbeat(conn, store.clock, caller.name, body.health)


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
def list_kiosks(_: Caller = Depends(Allowed(Role.STAFF)), store: Store = Depends(store_of)) -> dict:
    return {"kiosks": kiosks.list_kiosks(store.db.connection())}
