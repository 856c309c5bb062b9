"""Members: registration and earning at the till, member codes, and resolving a scanned code."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from .. import members
from ..models import AmountRequest, RegisterRequest, ResolveRequest
from ..store import Store
from .auth import Allowed, Caller, Role, store_of
from .throttle import RATE_LIMITED, RateLimited

router = APIRouter()


@router.post("/v1/members", tags=["staff"], status_code=201)
def register(
    body: RegisterRequest,
    _: Caller = Depends(Allowed(Role.STAFF)),
    store: Store = Depends(store_of),
) -> dict:
    with store.db.transaction() as conn:
        member_id = members.register(store.ledger, conn, body.name, body.phone, body.referred_by)
        return members.view(store.ledger, conn, member_id, None)


@router.get("/v1/members/{member_id}", tags=["staff"])
def get_member(
    member_id: str, _: Caller = Depends(Allowed(Role.STAFF)), store: Store = Depends(store_of)
) -> dict:
    with store.db.transaction() as conn:
        return members.view(store.ledger, conn, member_id, None)


@router.post("/v1/members/{member_id}/purchases", tags=["staff"])
def purchase(
    member_id: str,
    body: AmountRequest,
    _: Caller = Depends(Allowed(Role.STAFF)),
    store: Store = Depends(store_of),
) -> dict:
    """Points for a purchase at the member's tier rate (idempotent by ref)."""
    with store.db.transaction() as conn:
        earned = members.earn_purchase(store.ledger, conn, member_id, body.amount_cents, body.ref)
        return {"earned": earned, **members.view(store.ledger, conn, member_id, None)}


@router.post("/v1/members/{member_id}/topups", tags=["staff"])
def topup(
    member_id: str,
    body: AmountRequest,
    _: Caller = Depends(Allowed(Role.STAFF)),
    store: Store = Depends(store_of),
) -> dict:
    """Stored value top-up; it earns points too (idempotent by ref)."""
    with store.db.transaction() as conn:
        earned = members.top_up(store.ledger, conn, member_id, body.amount_cents, body.ref)
        return {"earned": earned, **members.view(store.ledger, conn, member_id, None)}


@router.post("/v1/members/{member_id}/code", tags=["staff"])
def member_code(
    member_id: str, _: Caller = Depends(Allowed(Role.STAFF)), store: Store = Depends(store_of)
) -> dict:
    """A fresh signed member code, as the member's phone app shows it."""
    with store.db.transaction() as conn:
        return members.issue_code(store.ledger, conn, store.signing_key, member_id)


@router.post("/v1/members/resolve", tags=["kiosks"], responses=RATE_LIMITED)
def resolve(
    body: ResolveRequest,
    caller: Caller = Depends(Allowed(Role.KIOSK)),
    store: Store = Depends(store_of),
    _rate: None = Depends(RateLimited("resolve")),
) -> dict:
    """Verify a scanned member code and return the member view for this kiosk."""
    with store.db.transaction() as conn:
        member_id = members.resolve_code(
            store.ledger, conn, store.signing_key, caller.name, body.code
        )
        return members.view(store.ledger, conn, member_id, caller.name)
