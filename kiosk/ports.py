"""Ports: the small interfaces the kiosk core uses to reach devices (and, later, the server).

Each has a real adapter and a simulated one in ``drivers/``, chosen by config, and the same
contract tests run against both. Values crossing a port are plain dataclasses and enums.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from kiosk.domain.payloads import PayloadKind
from kiosk.domain.receipts import Receipt

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
    at: float  # time.monotonic()
    detail: dict = field(default_factory=dict)


class Locker(Protocol):
    def open(self, compartment: int) -> OpenResult:
        """Pulse one solenoid (never two at once) and wait for the door sensor."""
        ...

    def door_state(self, compartment: int) -> DoorState: ...

    def watch(self, on_event: Callable[[LockerEvent], None]) -> None:
        """Report door events (closed, left open, tamper) from a worker thread."""
        ...

    def close(self) -> None:
        """Switch every relay off and release the pins (idempotent)."""
        ...
