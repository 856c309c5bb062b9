"""``kiosk selftest``: check the camera, the printer and (on request) each locker door.

It opens the devices itself, so it runs while the kiosk is stopped (the running kiosk's
technician screen has its own live self-test: kiosk/services/diagnostics.py); the camera,
printer and door probes are kiosk/services/health.py's, shared with that screen and ``kiosk
doctor``. With ``sim`` every device is its simulator (the configured kinds are overridden), so
the same checks run on a machine without hardware; there the camera must also decode a test QR
code.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

from kiosk import __version__
from kiosk.config import KioskConfig
from kiosk.domain.receipts import DeviceCheck, NamedValue, SelfTestPage
from kiosk.errors import KioskError
from kiosk.ports import AlreadyOpen, DoorJammed, Opened, ScannedCode
from kiosk.services.health import check_camera as camera_probe
from kiosk.services.health import check_printer as printer_probe
from kiosk.services.health import door_checks, read_doors

log = logging.getLogger(__name__)

SELFTEST_PAYLOAD = "LK1-SELFTEST"
CAMERA_WAIT_S = 5.0


def simulated(cfg: KioskConfig) -> KioskConfig:
    """``cfg`` with every device switched to its simulator."""
    return dataclasses.replace(
        cfg,
        scanner=dataclasses.replace(cfg.scanner, kind="sim"),
        printer=dataclasses.replace(cfg.printer, kind="sim"),
        locker=dataclasses.replace(cfg.locker, kind="sim"),
    )


def check_camera(cfg: KioskConfig, sim: bool) -> DeviceCheck:
    """A frame from the camera; in simulation, a test QR code decoded through the real pipeline."""
    from drivers.camera import SimCamera, SimScanner, make_decoder, make_scanner
    from drivers.camera.sim import StillFrames
    from drivers.camera.synth import camera_frame

    s = cfg.scanner
    if sim:
        frame = camera_frame(SELFTEST_PAYLOAD, s.width, s.height)
        scanner = SimScanner(
            SimCamera(StillFrames([frame], "self-test frame"), fps=s.fps),
            make_decoder(s.decoder),
            repeat_ignore_s=s.repeat_ignore_s,
        )
    else:
        try:
            scanner = make_scanner(s)
        except KioskError as exc:  # a missing decoder or Picamera2: say so, test the rest
            return DeviceCheck("camera", False, str(exc))
    seen: list[ScannedCode] = []
    decoded = threading.Event()

    def on_code(code: ScannedCode) -> None:
        seen.append(code)
        if code.payload == SELFTEST_PAYLOAD:
            decoded.set()

    scanner.start(on_code)
    try:
        deadline = time.monotonic() + CAMERA_WAIT_S
        while time.monotonic() < deadline:
            health = scanner.health()
            if sim and decoded.is_set():
                code = next(c for c in seen if c.payload == SELFTEST_PAYLOAD)
                return DeviceCheck(
                    "camera", True, f"test QR decoded by {code.decoder} in {code.decode_ms:.1f} ms"
                )
            if not sim and health.ok and health.frames > 0:
                what = "CSI camera" if s.kind == "picamera2" else "camera"
                return DeviceCheck("camera", True, f"{health.frames} frames from {what} {s.device}")
            time.sleep(0.05)
        probe = camera_probe(scanner)  # worded as the technician's screen words it
        what = "no test QR decoded" if sim and probe.ok else probe.detail
        return DeviceCheck("camera", False, f"{what} (waited {CAMERA_WAIT_S:.0f} s)")
    finally:
        scanner.stop()


def check_printer(
    cfg: KioskConfig, page: SelfTestPage, make_printer: Callable | None = None
) -> DeviceCheck:
    """Printer status (DLE EOT), then the self-test page."""
    if make_printer is None:
        from drivers.printer import make_printer
    try:
        printer = make_printer(cfg.printer)
    except KioskError as exc:
        return DeviceCheck("printer", False, str(exc))
    try:
        ready = printer_probe(printer)  # the status query, as the technician's screen asks it
        if not ready.ok:
            return ready
        printer.print_receipt(page)
        note = f" ({ready.detail})" if ready.detail != "paper ok" else ""
        return DeviceCheck("printer", True, f"test page printed{note}")
    except KioskError as exc:
        return DeviceCheck("printer", False, str(exc))
    finally:
        printer.close()


def check_locker(
    cfg: KioskConfig, pulse_doors: bool, make_locker: Callable | None = None
) -> list[DeviceCheck]:
    """Each door sensor read; with ``pulse_doors`` each compartment opened, one at a time."""
    if make_locker is None:
        from drivers.locker import make_locker
    try:
        locker = make_locker(cfg.locker)
    except KioskError as exc:
        return [DeviceCheck("locker", False, str(exc))]
    checks = []
    try:
        readings = read_doors(locker, locker.compartments)
        if not pulse_doors:
            return door_checks(readings)
        for reading in readings:
            number, name = reading.number, f"door {reading.number}"
            if reading.state is None:
                checks.append(DeviceCheck(name, False, reading.detail))
                continue
            try:
                result = locker.open(number)
            except KioskError as exc:
                checks.append(DeviceCheck(name, False, str(exc)))
                continue
            if isinstance(result, Opened):
                checks.append(
                    DeviceCheck(name, True, f"opened {result.after_s:.2f} s after the pulse")
                )
                if locker.sim is not None:  # the simulated technician shuts it again
                    locker.sim.close_door(number)
            elif isinstance(result, AlreadyOpen):
                checks.append(
                    DeviceCheck(name, False, "door was already open: close it and run again")
                )
            elif isinstance(result, DoorJammed):
                checks.append(
                    DeviceCheck(
                        name,
                        False,
                        f"did not open within {result.waited_s:.0f} s: check the latch, the solenoid "
                        "and its relay",
                    )
                )
    finally:
        locker.close()
    return checks


def run_selftest(
    cfg: KioskConfig,
    *,
    sim: bool = False,
    pulse_doors: bool = False,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    make_printer: Callable | None = None,
    make_locker: Callable | None = None,
) -> list[DeviceCheck]:
    """Every check, camera first; the printed page carries the results gathered before it.

    ``make_printer`` / ``make_locker`` default to the drivers' factories; tests pass their own
    (an already running simulator with a fault, say).
    """
    cfg = simulated(cfg) if sim else cfg
    checks = [check_camera(cfg, sim)]
    checks += check_locker(cfg, pulse_doors, make_locker)
    page = SelfTestPage(
        store_name_zh=cfg.kiosk.store_name_zh,
        store_name_en=cfg.kiosk.store_name_en,
        kiosk_id=cfg.kiosk.id,
        printed_at=now(),
        versions=(NamedValue("kiosk", __version__),),
        config=(
            NamedValue("server", cfg.server.url),
            NamedValue("scanner", f"{cfg.scanner.kind} {cfg.scanner.decoder}"),
            NamedValue("printer", f"{cfg.printer.kind} {cfg.printer.port} {cfg.printer.baudrate}"),
            NamedValue("locker", f"{cfg.locker.kind}, {len(cfg.locker.compartments)} compartments"),
        ),
        devices=tuple(checks),
    )
    checks.append(check_printer(cfg, page, make_printer))
    return checks


def format_table(checks: list[DeviceCheck]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"{'check':<{width}}  result  detail"]
    lines += [f"{c.name:<{width}}  {'PASS' if c.ok else 'FAIL':<6}  {c.detail}" for c in checks]
    return "\n".join(lines)
