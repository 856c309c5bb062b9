"""Staff sign-in at a kiosk (restocking): badge + PIN."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from .. import staff
from ..models import ErrorBody, StaffVerified, StaffVerifyRequest
from ..store import Store
from .auth import Allowed, Caller, Role, store_of
from .throttle import RATE_LIMITED, RateLimited

router = APIRouter()


@router.post(
    "/v1/staff/verify",
    tags=["kiosks"],
    responses={
        403: {"model": ErrorBody, "description": "bad_badge or bad_pin"},
        423: {
            "model": ErrorBody,
            "description": "staff_locked: too many wrong PINs",
            "headers": {
                "Retry-After": {
                    "description": "seconds until the lock ends",
                    "schema": {"type": "integer"},
                }
            },
        },
        **RATE_LIMITED,
    },
)
def verify_staff(
    body: StaffVerifyRequest,
    caller: Caller = Depends(Allowed(Role.KIOSK)),
    store: Store = Depends(store_of),
    _rate: None = Depends(RateLimited("pin")),
) -> StaffVerified:
    """Check a staff badge and PIN (restocking sign-in).

    Badge problems are 403 `bad_badge`; a wrong PIN is 403 `bad_pin` and counts: the fifth
    in a row locks the staff member for 5 minutes (423 `staff_locked`, `Retry-After`).
    """
    found = staff.verify(
        store.db, store.clock, store.signing_key, caller.name, body.badge, body.pin
    )
    return StaffVerified(**found)
