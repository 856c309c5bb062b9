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
            "description": "staff_locked: too many wrong PINs (no Retry-After: until unlocked)",
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
    in a row locks the staff member (423 `staff_locked`) for 5 minutes, the next time for an
    hour (`Retry-After`), the third time, or at the 20th wrong PIN of a store day, until a
    manager unlocks them (no `Retry-After`). New PINs have 6-12 digits; 4-5 digit PINs set
    earlier are still accepted here until they are replaced.
    """
    found = staff.verify(
        store.db, store.clock, store.verify_keys, caller.name, body.badge, body.pin,
        tz=store.ledger.tz,
    )  # fmt: skip
    return StaffVerified(**found)
