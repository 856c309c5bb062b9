"""Holds on points and stock, captured after the door sensor confirmed, or voided."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from ..models import RedemptionRequest, VoidRequest
from ..store import Store
from .auth import Allowed, Caller, Role, store_of
from .members import MemberSession

router = APIRouter()


@router.post("/v1/redemptions", tags=["redemptions"])
def create_redemption(
    request: Request,
    body: RedemptionRequest,
    member_session: MemberSession = None,
    caller: Caller = Depends(Allowed(Role.KIOSK)),
    store: Store = Depends(store_of),
) -> dict:
    """Hold points and stock (and open a payment for a cash part) for the member whose code
    this kiosk resolved (`X-Member-Session`). Idempotent by txn_id: the same request again
    returns the first answer, with or without a session."""
    return store.redemptions.create(
        caller.name, body.model_dump(), str(request.base_url), member_session
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
    """Release the hold: points and stock back, payment cancelled or refunded. Idempotent."""
    return store.redemptions.void(caller.name, txn_id, body.reason)
