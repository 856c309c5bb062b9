"""Health probes over explicit ports: the camera, the printer, the doors and the store server.

One place for "is this device (or the server) working, and what does it say": the offline
``kiosk selftest`` (kiosk/commands/selftest.py), the technician's screen
(kiosk/services/diagnostics.py), ``kiosk doctor`` (kiosk/commands/doctor.py) and the
maintenance monitor (kiosk/services/maintenance_monitor.py) all read through these. A probe
never raises a ``KioskError``: what went wrong is its result, in words a technician acts on.

``maintenance_reason`` decides whether the kiosk can serve members at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kiosk.domain.receipts import Bilingual, DeviceCheck
from kiosk.errors import KioskError
from kiosk.i18n import Translator
from kiosk.ports import DoorState, Locker, PaperState, QrScanner, ReceiptPrinter


@dataclass(frozen=True)
class Devices:
    """The devices the probes read: ports, each with its own contract (kiosk/ports.py)."""

    printer: ReceiptPrinter
    locker: Locker
    compartments: tuple[int, ...]  # the configured compartments, in order
    scanner: QrScanner | None = None  # None: this kiosk runs without a scanner


@dataclass(frozen=True)
class ServerCheck:
    url: str
    reachable: bool
    latency_ms: float | None  # of GET /v1/health, retries included
    detail: str  # the server's status and time, or what went wrong
    server_time: str = ""  # as the server said it (ISO 8601), for a clock comparison


@dataclass(frozen=True)
class DoorReading:
    number: int
    state: DoorState | None  # None: the sensor could not be read
    detail: str = ""


def check_server(
    health: Callable[[], Mapping[str, Any]], url: str, clock: Callable[[], float] = time.monotonic
) -> ServerCheck:
    """Ask the store server's health endpoint (``health``: the client's) and time the answer."""
    start = clock()
    try:
        info = health()
    except KioskError as exc:
        return ServerCheck(url, False, None, str(exc))
    ms = (clock() - start) * 1000
    said = str(info.get("server_time", ""))
    return ServerCheck(url, True, ms, f"{info.get('status')}, {info.get('server_time')}", said)


def check_printer(printer: ReceiptPrinter) -> DeviceCheck:
    """The printer's status query (DLE EOT): ready, or what stops it."""
    try:
        status = printer.status()
    except KioskError as exc:
        return DeviceCheck("printer", False, str(exc))
    detail = f"paper {status.paper.value}" if status.ready else status.detail
    return DeviceCheck("printer", status.ready, detail)


def check_camera(
    scanner: QrScanner | None, clock: Callable[[], float] = time.monotonic
) -> DeviceCheck | None:
    """The running scanner's health (None: no scanner)."""
    if scanner is None:
        return None
    health = scanner.health()
    detail = f"{health.detail}, {health.frames} frames"
    if health.last_decode_ms is not None:
        detail += f", last decode {health.last_decode_ms:.1f} ms"
    if health.last_frame_at is not None:
        detail += f", last frame {max(0.0, clock() - health.last_frame_at):.1f} s ago"
    return DeviceCheck("camera", health.ok, detail)


def read_doors(locker: Locker, compartments: Iterable[int]) -> tuple[DoorReading, ...]:
    """Each door sensor, once; an unreadable one says why."""
    out = []
    for number in compartments:
        try:
            out.append(DoorReading(number, locker.door_state(number)))
        except KioskError as exc:
            out.append(DoorReading(number, None, str(exc)))
    return tuple(out)


def door_checks(doors: Iterable[DoorReading]) -> list[DeviceCheck]:
    """The door readings as self-test lines ("door 3: sensor reads closed")."""
    return [
        DeviceCheck(f"door {d.number}", d.state is not None,
                    f"sensor reads {d.state.value}" if d.state is not None else d.detail)
        for d in doors
    ]  # fmt: skip


# ---- can the kiosk serve members? ---------------------------------------------------------------

_texts: Translator | None = None


def printer_down(printer: ReceiptPrinter, tries: int = 2, pause_s: float = 0.5) -> str | None:
    """Why the printer cannot print (None: it can, or it is only out of paper). One silent
    or offline answer is asked again: a status query can miss its deadline on a busy kiosk,
    and one missed answer must not take the kiosk out of service."""
    detail: str | None = None
    for attempt in range(tries):
        if attempt:
            time.sleep(pause_s)
        try:
            status = printer.status()
        except KioskError as exc:
            detail = str(exc)
            continue
        # ESC/POS printers report "offline" while out of paper: that alone is no reason
        paper_out_only = status.paper is PaperState.OUT and not status.cover_open
        if (status.online and not status.cover_open) or paper_out_only:
            return None
        detail = status.detail
    return detail


def maintenance_reason(
    devices: Devices, *, safe_mode: str | None, enrolled: bool, texts: Translator | None = None
) -> Bilingual | None:
    """What staff must fix before members can be served (None: nothing). Blocks briefly on the
    printer's status query: call it from a worker. Paper out is not a reason (receipts wait in
    the queue); a printer that does not answer, a locker without one readable door, a failing
    camera, a journal in safe mode (``safe_mode``: why) and a kiosk not enrolled are."""
    global _texts
    texts = texts or _texts or (_texts := Translator("zh"))
    found: list[tuple[str, dict[str, object]]] = []
    if safe_mode is not None:
        found.append(("maintenance.journal", {"detail": safe_mode}))
    if not enrolled:
        found.append(("maintenance.not_enrolled", {}))
    printer_fault = printer_down(devices.printer)
    if printer_fault is not None:
        found.append(("maintenance.printer", {"detail": printer_fault}))
    doors = read_doors(devices.locker, devices.compartments)
    if doors and all(d.state is None for d in doors):
        found.append(("maintenance.locker", {"detail": doors[0].detail}))
    camera = check_camera(devices.scanner)
    if camera is not None and not camera.ok:
        found.append(("maintenance.camera", {"detail": camera.detail}))
    if not found:
        return None
    zh = "\n".join(texts.text(key, "zh", **f) for key, f in found)
    return Bilingual(zh, "\n".join(texts.text(key, "en", **f) for key, f in found))
