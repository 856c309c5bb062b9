"""Members: registration and earning at the till, member codes, and resolving a scanned code."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header

from .. import member_sessions, members, till
from ..models import AmountRequest, ManualPointsRequest, RegisterRequest, ResolveRequest
from ..store import Store
from .auth import Allowed, Caller, Forbidden, Role, store_of
from .throttle import RATE_LIMITED, RateLimited

router = APIRouter()

_TILL = Allowed(Role.CASHIER, Role.MANAGER, Role.ADMIN)

# A hold, a spin or a member's spins left: the session the kiosk got when it resolved the
# member's code (a header, so it stays out of request bodies, their hashes and URLs in logs)
MemberSession = Annotated[
    str | None,
    Header(
        alias=member_sessions.HEADER,
        description="the member session from POST /v1/members/resolve (member_session.token); "
        "403 member_session_required / member_session_invalid without a live one for this "
        "member at this kiosk",
    ),
]


@router.post("/v1/members", tags=["staff"], status_code=201)
def register(
    body: RegisterRequest, _: Caller = Depends(_TILL), store: Store = Depends(store_of)
) -> dict:
    """A new member (one per phone number); registration and referral bonuses."""
    with store.db.transaction() as conn:
        member_id = members.register(store.ledger, conn, body.name, body.phone, body.referred_by)
        return members.view(store.ledger, conn, member_id, None)


@router.get("/v1/members/{member_id}", tags=["staff"])
def get_member(
    member_id: str, _: Caller = Depends(_TILL), store: Store = Depends(store_of)
) -> dict:
    with store.db.transaction() as conn:
        return members.view(store.ledger, conn, member_id, None)


@router.post("/v1/members/{member_id}/purchases", tags=["staff"])
def purchase(
    member_id: str,
    body: AmountRequest,
    caller: Caller = Depends(_TILL),
    store: Store = Depends(store_of),
) -> dict:
    """Points for a purchase at the member's tier rate (idempotent by ref; capped per call and
    per member per day: 422 `amount_over_limit` / `daily_limit_reached`)."""
    with store.db.transaction() as conn:
        earned = till.record_money(
            store.ledger, conn, store.settings.till_limits, till.TillMoney.PURCHASE,
            member_id, body.amount_cents, body.ref, caller.actor,
        )  # fmt: skip
        return {"earned": earned, **members.view(store.ledger, conn, member_id, None)}


@router.post("/v1/members/{member_id}/topups", tags=["staff"])
def topup(
    member_id: str,
    body: AmountRequest,
    caller: Caller = Depends(_TILL),
    store: Store = Depends(store_of),
) -> dict:
    """Stored value top-up; it earns points too (idempotent by ref; capped like purchases)."""
    with store.db.transaction() as conn:
        earned = till.record_money(
            store.ledger, conn, store.settings.till_limits, till.TillMoney.TOPUP,
            member_id, body.amount_cents, body.ref, caller.actor,
        )  # fmt: skip
        return {"earned": earned, **members.view(store.ledger, conn, member_id, None)}


@router.post("/v1/members/{member_id}/adjustments", tags=["staff"])
def manual_points(
    member_id: str,
    body: ManualPointsRequest,
    caller: Caller = Depends(Allowed(Role.MANAGER, Role.ADMIN)),
    store: Store = Depends(store_of),
) -> dict:
    """Points given by hand with a reason (idempotent by ref; capped per call and per account
    per day)."""
    with store.db.transaction() as conn:
        till.manual_points(
            store.ledger, conn, store.settings.till_limits,
            member_id, body.points, body.reason, body.ref, caller.actor,
        )  # fmt: skip
        return members.view(store.ledger, conn, member_id, None)


@router.post("/v1/members/{member_id}/code", tags=["members"])
def member_code(
    member_id: str,
    caller: Caller = Depends(Allowed(Role.MEMBER_APP)),
    store: Store = Depends(store_of),
) -> dict:
    """A fresh signed member code for the member's own app: a member-app token mints codes
    for its one member only (403 `not_your_member` otherwise)."""
    if caller.member_id != member_id:
        raise Forbidden("not_your_member", "this app token mints codes for its own member only")
    with store.db.transaction() as conn:
        return members.issue_code(store.ledger, conn, store.signing_key, member_id)


@router.post("/v1/members/resolve", tags=["kiosks"], responses=RATE_LIMITED)
def resolve(
    body: ResolveRequest,
    caller: Caller = Depends(Allowed(Role.KIOSK)),
    store: Store = Depends(store_of),
    _rate: None = Depends(RateLimited("resolve")),
) -> dict:
    """Verify a scanned member code and return the member view for this kiosk, with the
    member session (`member_session`: `token`, `expires_at`, `header`) that its holds and
    spins for this member must carry."""
    with store.db.transaction() as conn:
        code = members.resolve_code(store.ledger, conn, store.verify_keys, caller.name, body.code)
        session = member_sessions.open_session(
            conn, store.clock.now(), caller.name, code.subject, code.nonce,
            store.settings.member_session_s,
        )  # fmt: skip
        return {
            **members.view(store.ledger, conn, code.subject, caller.name),
            "member_session": session,
        }
