"""What a kiosk may report: its heartbeat's health and each outbox event kind's payload.

Every field has a type and a bound, so nothing a kiosk token sends is stored unbounded. The
health and alert details keep room for what a kiosk's probes add (extra keys), bounded like any
free-form JSON (``bounded.py``). An event whose payload does not fit its kind is refused on its
own (``invalid_payload``), as before: the rest of the batch is applied.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from .bounded import JsonLimits, check_json
from .errors import BadRequest, shown

Short = Annotated[str, StringConstraints(max_length=64)]
Text = Annotated[str, StringConstraints(max_length=1000)]
TxnRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
MemberRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
SkuRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,40}$")]
Compartment = Annotated[int, Field(ge=1, le=99)]

# the kiosk sends at most 2 KB; numbers are its kind's model's to check (an event refused alone)
PAYLOAD_LIMITS = JsonLimits(max_bytes=4096, max_depth=4, max_keys=32, max_int=None)
HEALTH_LIMITS = JsonLimits(max_bytes=16384, max_depth=6, max_keys=64)
_EXTRA_LIMITS = JsonLimits(max_bytes=4096, max_depth=3, max_keys=32, max_items=50)


def bounded_payload(value: dict[str, Any]) -> dict[str, Any]:
    """An event's payload as sent: storable JSON within ``PAYLOAD_LIMITS``."""
    return check_json(value, PAYLOAD_LIMITS)


def bounded_health(value: Any) -> Any:
    return check_json(value, HEALTH_LIMITS)


class _Payload(BaseModel):
    # strict: a count of "2" or true is not a number (true used to pass as 1)
    model_config = ConfigDict(extra="forbid", strict=True)


class _WithExtras(BaseModel):
    """Known fields typed; extra keys a probe adds, bounded."""

    model_config = ConfigDict(extra="allow", strict=True)
    extra_limits: ClassVar[JsonLimits] = _EXTRA_LIMITS

    @model_validator(mode="after")
    def _bounded_extras(self) -> _WithExtras:
        check_json(self.model_extra or {}, self.extra_limits)
        return self


class InventoryPayload(_Payload):
    """A restock count (docs/restock.md)."""

    compartment: Compartment
    sku: SkuRef | None = None
    count: int = Field(ge=0, le=10_000)
    after_hold_seq: int | None = Field(default=None, ge=0, le=2**53)
    open_holds: list[TxnRef] = Field(default_factory=list, max_length=50)


# the kiosk's transaction ids: UUID4, as str(uuid.uuid4()) writes them
Uuid4 = Annotated[
    str,
    StringConstraints(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
    ),
]


class OfflineRedemptionPayload(_Payload):
    """A gift dispensed while the server was unreachable (offline.py checks the rest)."""

    txn_id: Uuid4
    member_id: MemberRef
    sku: SkuRef
    points: int = Field(ge=0, le=10_000_000)
    compartment: Compartment | None = None
    member_code: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = Field(
        default=None, description="the signed member code scanned for this gift"
    )


class AlertPayload(_WithExtras):
    """``fault`` and ``needs_check``: what staff are told."""

    what: Short | None = None
    txn_id: TxnRef | None = None
    compartment: Compartment | None = None
    sku: SkuRef | None = None
    reason: Text | None = None
    code: Short | None = None
    detail: Text | None = None
    device: Short | None = None
    session: Short | None = None
    staff_id: Short | None = None
    door: Short | None = None


class DoorAlarmPayload(_Payload):
    """``door_alarm``: a door opened with no command (``tamper``) or left open past the
    kiosk's limit (``left_open``); kept as a staff alert (kiosk/services/door_alarms.py)."""

    compartment: Compartment
    what: Literal["tamper", "left_open"]
    since: Annotated[str, StringConstraints(max_length=40)] = Field(
        description="when the door opened, ISO 8601 with the kiosk's UTC offset"
    )
    open_s: float | None = Field(default=None, ge=0, le=10_000_000, allow_inf_nan=False)
    detail: Text | None = None


class SyncHealth(_WithExtras):
    outbox: int | None = Field(default=None, ge=0, le=10_000_000)
    alerts: int | None = Field(default=None, ge=0, le=10_000_000)
    clock_skew_s: float | None = Field(default=None, allow_inf_nan=False)
    failures: int | None = Field(default=None, ge=0, le=2**53)


class KioskHealth(_WithExtras):
    """A heartbeat's health: the sync worker's state and whatever the kiosk's probes report
    (printer paper, doors, camera, versions), bounded."""

    extra_limits: ClassVar[JsonLimits] = HEALTH_LIMITS

    sync: SyncHealth | None = None
    health_error: Annotated[str, StringConstraints(max_length=300)] | None = None


PAYLOADS: dict[str, type[BaseModel]] = {
    "inventory": InventoryPayload,
    "offline_redemption": OfflineRedemptionPayload,
    "fault": AlertPayload,
    "door_alarm": DoorAlarmPayload,
    "needs_check": AlertPayload,
}


def parse_payload(kind: str, payload: dict[str, Any]) -> Any:
    """The payload as its kind's model; BadRequest ``invalid_payload`` naming the field."""
    model = PAYLOADS.get(kind)
    if model is None:
        raise BadRequest("unknown_event_kind", f"event kind {shown(kind)} is not known")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise BadRequest(
            "invalid_payload", f"payload.{where}: {first.get('msg', 'invalid')}"
        ) from None
