"""Ports: the small interfaces the kiosk core uses to reach its devices and the store server.

Each device port has a real adapter and a simulated one in ``drivers/``, chosen by config, and
the same contract tests run against both (tests/drivers/). The store server port's adapter is
kiosk/sync/client.py, tested against the reference server (storeserver/). Values crossing a
port are plain dataclasses and enums; failures are ``kiosk.errors`` classes (docs/errors.md).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kiosk.domain.payloads import PayloadKind
from kiosk.domain.receipts import Receipt
from kiosk.domain.wheel import Prize, Wheel

__all__ = ["PayloadKind", "Receipt"]  # re-exported: the values crossing the ports

# ---- QR scanner ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScannedCode:
    """One decoded QR code, delivered once per ``repeat_ignore_s`` for the same payload."""

    payload: str  # text; undecodable bytes are replaced, never raised
    kind: PayloadKind
    decoder: str  # "pyzbar", "zxing", "typed" (simulator)
    decode_ms: float  # time spent decoding the frame that held it
    at: float  # time.monotonic() when decoded


@dataclass(frozen=True)
class ScannerHealth:
    ok: bool
    detail: str  # for a technician: "camera /dev/video0 missing: check the USB cable", "ok"
    frames: int = 0
    last_decode_ms: float | None = None
    last_frame_at: float | None = None


class QrScanner(Protocol):
    def start(self, on_code: Callable[[ScannedCode], None]) -> None:
        """Start reading frames on a worker thread; ``on_code`` is called from that thread."""
        ...

    def stop(self) -> None:
        """Stop the worker thread and release the camera (idempotent)."""
        ...

    def health(self) -> ScannerHealth: ...

    def latest_frame(self) -> Any | None:
        """The last frame read (an HxW grey or HxWx3 BGR uint8 array), for an on-screen
        preview; None before the first frame or while stopped. Never modified after."""
        ...


# ---- receipt printer ------------------------------------------------------------------------------


class PaperState(enum.Enum):
    OK = "ok"
    NEAR_END = "near_end"
    OUT = "out"


@dataclass(frozen=True)
class PrinterStatus:
    online: bool
    paper: PaperState
    cover_open: bool = False
    detail: str = "ok"  # for a technician, e.g. "paper out: load a 58 mm roll"

    @property
    def ready(self) -> bool:
        return self.online and self.paper is not PaperState.OUT and not self.cover_open


class ReceiptPrinter(Protocol):
    def status(self) -> PrinterStatus:
        """Query the printer (DLE EOT); never raises for a printer that answers."""
        ...

    def print_receipt(self, receipt: Receipt) -> None:
        """Check status, then print and cut; raises PrinterError (the caller keeps the receipt)."""
        ...

    def close(self) -> None: ...


# ---- locker ---------------------------------------------------------------------------------------


class DoorState(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class Opened:
    """The door sensor saw the door open after the pulse."""

    compartment: int
    after_s: float


@dataclass(frozen=True)
class AlreadyOpen:
    """The door read open before any pulse: nothing was pulsed."""

    compartment: int


@dataclass(frozen=True)
class DoorJammed:
    """Pulsed, but the sensor never saw the door open within the timeout."""

    compartment: int
    waited_s: float


OpenResult = Opened | AlreadyOpen | DoorJammed


class LockerEventKind(enum.Enum):
    OPENED = "opened"
    CLOSED = "closed"
    LEFT_OPEN = "left_open"  # open past door_close_timeout_s: alarm
    TAMPER = "tamper"  # opened with no command


@dataclass(frozen=True)
class LockerEvent:
    kind: LockerEventKind
    compartment: int
    at: float  # the locker's clock: time.monotonic() unless a test injects another
    detail: dict = field(default_factory=dict)


class Locker(Protocol):
    def open(self, compartment: int) -> OpenResult:
        """Pulse one solenoid (never two at once) and wait for the door sensor."""
        ...

    def door_state(self, compartment: int) -> DoorState: ...

    def watch(self, on_event: Callable[[LockerEvent], None]) -> None:
        """Report door events (opened, closed, left open, tamper) from a worker thread; a
        later call replaces the earlier callback."""
        ...

    def close(self) -> None:
        """Switch every relay off and release the pins (idempotent)."""
        ...


# ---- alarm output ---------------------------------------------------------------------------------


class AlarmOutput(Protocol):
    """A buzzer or warning light driven while a door alarm is active (drivers/indicator.py)."""

    def set(self, on: bool) -> None:
        """Sound (True) or silence (False); repeating the current state changes nothing."""
        ...

    def close(self) -> None:
        """Silence it and release its pin (idempotent)."""
        ...


# ---- store server -----------------------------------------------------------------------------
# Values returned by the store server adapter (kiosk/sync/client.py), parsed once from the server's
# JSON (kiosk/sync/parse.py). The wheel is kiosk.domain.wheel.Wheel; the member and catalog views
# stay the server's JSON objects, checked for the keys the kiosk relies on (the domain parses them).
# (Imported here so this section is append-only; they may move to the top.)


@dataclass(frozen=True)
class Enrollment:
    """What enrollment returned; the token is already stored in the token file."""

    kiosk_id: str
    public_key: bytes  # raw 32-byte Ed25519 key for member codes (the store's current one)
    server_time: str
    public_keys: tuple[bytes, ...] = ()  # every key codes may be signed with now, current first


class RedemptionState(enum.Enum):
    """Where a hold is on the server (storeserver ``redemptions.state``)."""

    HELD = "held"
    CAPTURED = "captured"
    VOIDED = "voided"
    EXPIRED = "expired"


class PaymentStatus(enum.Enum):
    """The cash part of a points + cash hold (storeserver ``payments.status``)."""

    PENDING = "pending"
    PAID = "paid"
    CANCELLED = "cancelled"  # voided before it was paid
    EXPIRED = "expired"  # not paid in time
    REFUNDED = "refunded"  # paid, then voided


@dataclass(frozen=True)
class Payment:
    """The cash part of a hold: what the member pays on their phone at ``pay_url``."""

    id: str
    status: PaymentStatus
    amount_cents: int
    pay_url: str | None = None


@dataclass(frozen=True)
class Redemption:
    """A hold (redemption or wheel spin) as the server reports it."""

    txn_id: str
    kind: str  # "redeem", "spin", "offline"
    state: RedemptionState
    member_id: str
    sku: str | None
    compartment: int | None
    points: int
    cash_cents: int
    hold_expires_at: str | None
    void_reason: str | None
    coupon_code: str | None
    payment: Payment | None
    prize: Prize | None  # a spin's draw
    balance: int | None
    raw: dict[str, Any] = field(repr=False, compare=False)
    hold_seq: int | None = None  # the server's order of holds (a restock count's stamp)


@dataclass(frozen=True)
class OutboxEvent:
    """One outbox event; ``event_id`` makes re-sending it harmless."""

    event_id: str
    kind: str  # inventory, fault, door_alarm, needs_check, offline_redemption
    at: str  # ISO 8601
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EventResult:
    event_id: str
    status: str  # "applied", "rejected", "conflict"
    reason: str | None = None
    message: str | None = None


class StoreServer(Protocol):
    """The store server's kiosk API. Every failure is a ``StoreServerError``: ``Unreachable``
    (no usable answer: retry later or work offline) or ``Rejected`` (a 4xx refusal, with the
    server's ``code`` and ``status``). Calls keyed by ``txn_id``/``event_id`` are idempotent."""

    def health(self) -> dict[str, Any]: ...

    def enroll(self, enrollment_code: str, kiosk_id: str) -> Enrollment:
        """One-time code for a token (stored 0600) and the store's member-code public keys
        (current first); never retried."""
        ...

    def resolve_member(self, code: str) -> dict[str, Any]: ...

    def catalog(self) -> dict[str, Any]: ...

    def picture(self, name: str) -> bytes:
        """An item picture the catalog names (PNG or JPEG bytes, bounded; not yet verified)."""
        ...

    def create_redemption(
        self,
        txn_id: str,
        member_id: str,
        sku: str,
        points: int,
        *,
        compartment: int | None = None,
        cash_cents: int = 0,
        member_session: str | None = None,
    ) -> Redemption:
        """Hold for the member of ``member_session`` (from ``resolve_member``'s answer)."""
        ...

    def get_redemption(self, txn_id: str) -> Redemption: ...

    def capture(self, txn_id: str) -> Redemption: ...

    def void(self, txn_id: str, reason: str) -> Redemption: ...

    def spin(
        self,
        txn_id: str,
        member_id: str,
        wheel_id: str,
        *,
        cost_points: int | None = None,
        member_session: str | None = None,
    ) -> Redemption: ...

    def wheel_info(
        self, wheel_id: str, member_id: str | None = None, member_session: str | None = None
    ) -> Wheel: ...

    def send_events(self, events: Iterable[OutboxEvent]) -> list[EventResult]: ...

    def heartbeat(self, health: Mapping[str, Any]) -> dict[str, Any]: ...

    def verify_staff(self, badge: str, pin: str) -> StaffIdentity:
        """Check a staff badge and PIN online; a wrong PIN counts towards the server's lockout.

        Refusals are ``Rejected`` with code ``bad_badge`` or ``bad_pin``, or ``staff_locked``
        carrying ``retry_after_s`` (the HTTP adapter's ``RetryLater``). Never retried.
        """
        ...


@dataclass(frozen=True)
class StaffIdentity:
    """A staff member whose badge and PIN the store server accepted."""

    staff_id: str
    name: str
