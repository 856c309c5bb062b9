"""Holds on points and stock, captured after the door sensor confirmed, or voided."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ..models import RedemptionRequest, VoidRequest
from ..store import Store
from .auth import Allowed, Caller, Role, store_of
from .members import MemberSession
from .throttle import RATE_LIMITED, RateLimited

router = APIRouter()


@router.post("/v1/redemptions", tags=["redemptions"], responses=RATE_LIMITED)
def create_redemption(
    body: RedemptionRequest,
    member_session: MemberSession = None,
    caller: Caller = Depends(Allowed(Role.KIOSK)),
    store: Store = Depends(store_of),
    _rate: None = Depends(RateLimited("holds")),
) -> dict:
    """Hold points and stock (and open a payment for a cash part) for the member whose code
    this kiosk resolved (`X-Member-Session`). Idempotent by txn_id: the same request again
    returns the first answer, with or without a session.

    A cash part on a store without a payment provider is 409 `payments_unavailable`."""
    # pay links are built from the configured public URL, never from the request's Host header
    return store.redemptions.create(
        caller.name, body.model_dump(), store.pay_base_url(), member_session
    )


@router.get("/v1/redemptions/{txn_id}", tags=["redemptions"])
def get_redemption(
    txn_id: str, caller: Caller = Depends(Allowed(Role.KIOSK)), store: Store = Depends(store_of)
) -> dict:
    return store.redemptions.get(caller.name, txn_id)


@router.post("/v1/redemptions/{txn_id}/capture", tags=["redemptions"])
def capture(
    txn_id: str, caller: Caller = Depends(Allowed(Role.KIOSK)), store: Store = Depends(store_of)
) -> dict:
    """Commit after the door sensor confirmed the gift was taken. Idempotent."""
    return store.redemptions.capture(caller.name, txn_id)


@router.post("/v1/redemptions/{txn_id}/void", tags=["redemptions"])
def void(
    txn_id: str,
    body: VoidRequest,
    caller: Caller = Depends(Allowed(Role.KIOSK)),
    store: Store = Depends(store_of),
) -> dict:
    """Release the hold: points and stock back, payment cancelled or refunded. Idempotent.

    A spin is voided only when its prize is a gift that was not dispensed (reason
    `gift_not_dispensed: ...`, e.g. its door jammed), which raises a staff alert; any other
    void of a spin is 409 `spin_not_voidable`: a drawn spin is final, capture it.
    """
    return store.redemptions.void(caller.name, txn_id, body.reason)
