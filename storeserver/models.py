"""Request bodies of the API (pydantic); unknown fields are refused so typos surface."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from . import event_payloads
from .event_payloads import KioskHealth
from .text import check_plain

TxnId = Annotated[
    str,
    StringConstraints(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
    ),
]
MemberId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
Sku = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,40}$")]
EventId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(check_plain)]
# a name a person typed: shown again on screens and receipts (storeserver/text.py)
PersonName = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(check_plain)
]


# free-form JSON a kiosk sends, bounded (storeserver/bounded.py): it used to be stored at any size
EventPayload = Annotated[dict[str, Any], AfterValidator(event_payloads.bounded_payload)]


def _bounded_health(health: KioskHealth) -> KioskHealth:
    event_payloads.bounded_health(health.model_dump(exclude_unset=True))
    return health


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    error: str = Field(description="stable machine-readable code, e.g. insufficient_points")
    message: str = Field(description="what went wrong and what to do, for a technician")


class EnrollRequest(Strict):
    enrollment_code: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    kiosk_id: Annotated[str, StringConstraints(min_length=1, max_length=32)]


class RegisterRequest(Strict):
    name: PersonName
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{6,15}$")]
    referred_by: MemberId | None = None


class AmountRequest(Strict):
    amount_cents: int = Field(gt=0, le=100_000_000)
    ref: Ref


class ManualPointsRequest(Strict):
    points: int = Field(gt=0, le=1_000_000, description="points to give; the store's caps apply")
    reason: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    ref: Ref


class ResolveRequest(Strict):
    code: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class RedemptionRequest(Strict):
    txn_id: TxnId
    member_id: MemberId
    sku: Sku
    compartment: int | None = Field(default=None, ge=1, le=99)
    points: int = Field(ge=0, le=10_000_000)
    cash_cents: int = Field(default=0, ge=0, le=10_000_000)


class VoidRequest(Strict):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class SpinRequest(Strict):
    txn_id: TxnId
    member_id: MemberId
    wheel_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
    cost_points: int | None = Field(
        default=None,
        ge=0,
        le=10_000_000,
        description="the cost the member was shown: another cost is refused (409 price_changed) "
        "before anything is drawn, since a drawn spin cannot be voided",
    )


class TechnicianCodeRequest(Strict):
    minutes: int = Field(default=15, ge=1, le=60, description="how long the code opens the kiosk")


class CouponRedeemRequest(Strict):
    ref: Ref | None = None


class KioskEvent(Strict):
    event_id: EventId
    kind: Literal["inventory", "fault", "door_alarm", "needs_check", "offline_redemption"]
    at: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    payload: EventPayload = Field(
        default_factory=dict,
        description="at most 4 KB; checked against its kind's model "
        "(storeserver/event_payloads.py): one that does not fit is answered "
        "rejected (or conflict) with reason invalid_payload",
    )


class EventsRequest(Strict):
    events: list[KioskEvent] = Field(min_length=1, max_length=200)


class HeartbeatRequest(Strict):
    health: Annotated[KioskHealth, AfterValidator(_bounded_health)] = Field(
        description="the sync worker's state and what the kiosk's probes report (printer "
        "paper, doors, camera, versions): at most 16 KB, depth 6, strings of 1000 characters"
    )


class StaffVerifyRequest(Strict):
    badge: Annotated[str, StringConstraints(min_length=1, max_length=256)] = Field(
        description="the staff badge code as scanned (LK1.S....)"
    )
    pin: Annotated[str, StringConstraints(pattern=r"^[0-9]{4,12}$")] = Field(
        description="the PIN the staff member typed, 4 to 12 digits (a new PIN has 6 or more; "
        "shorter ones set earlier still sign in until replaced)"
    )


class StaffVerified(BaseModel):
    """A right badge and PIN (response body)."""

    staff_id: str
    name: str
