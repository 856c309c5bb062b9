"""What a technician sees, without Kivy: versions, config, server, sync, devices, journal, errors.

``gather(readings)`` reads everything once (it blocks on the server's health call and the
printer's status query: run it on a worker); ``run_live_selftest(readings)`` checks the running
devices (``kiosk selftest`` builds its own, which the app cannot while it holds them). Both read
through ``KioskReadings``, the ports the composition root (kiosk/wiring.py) hands over, and the
probes of kiosk/services/health.py (also where "can the kiosk serve members?" is decided).
``verify_technician`` (kiosk/services/technician_codes.py) checks the technician code that opens
it: signed by the store, made for this kiosk's id and never seen here before.
``install_error_buffer()`` keeps the last warnings and errors of the log for this screen.
``DiagnosticsFlow`` is the screen's state machine, built like the member session.
"""

from __future__ import annotations

import collections
import datetime as dt
import enum
import logging
import platform
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any

from kiosk import __version__
from kiosk.config import KioskConfig
from kiosk.domain.receipts import DeviceCheck, NamedValue, SelfTestPage
from kiosk.errors import KioskError
from kiosk.services.health import (
    Devices,
    DoorReading,
    ServerCheck,
    check_camera,
    check_printer,
    check_server,
    door_checks,
    read_doors,
)
from kiosk.services.technician_codes import technician_guard, verify_technician
from kiosk.storage.journal import Journal, JournalStats
from kiosk.sync.records import SyncStatus

log = logging.getLogger(__name__)

# distributions whose versions a technician asks for (read from metadata: nothing is imported)
DISTRIBUTIONS = ("kivy", "opencv-python-headless", "opencv-python", "pyzbar", "zxing-cpp",
                 "tinydb", "requests", "cryptography", "gpiozero", "pyserial", "python-escpos")  # fmt: skip


# ---- recent errors --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorLine:
    at: float  # time.time()
    level: str
    logger: str
    message: str


class ErrorBuffer(logging.Handler):
    """The last ``capacity`` log records at WARNING or above, for the technician screen."""

    def __init__(self, capacity: int = 50, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self._lines: collections.deque[ErrorLine] = collections.deque(maxlen=capacity)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a bad format string must not break logging
            self.handleError(record)
            return
        if record.exc_info and record.exc_info[0] is not None:
            text += f" ({record.exc_info[0].__name__})"
        self._lines.append(ErrorLine(record.created, record.levelname, record.name, text))

    def lines(self) -> tuple[ErrorLine, ...]:
        self.acquire()
        try:
            return tuple(self._lines)
        finally:
            self.release()


def install_error_buffer(capacity: int = 50) -> ErrorBuffer:
    """The root logger's ErrorBuffer, added on the first call (call it early at start-up)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, ErrorBuffer):
            return handler
    buffer = ErrorBuffer(capacity)
    root.addHandler(buffer)
    return buffer


# ---- the report -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KioskReadings:
    """What the technician's report reads: the devices, and a narrow callable for each part of
    the kiosk it asks (the composition root, kiosk/wiring.py, fills them in)."""

    config: KioskConfig  # the summary, the server's url, the key file and kiosk id
    devices: Devices
    server_health: Callable[[], Mapping[str, Any]]  # GET /v1/health
    sync_status: Callable[[], SyncStatus]
    flagged: Callable[[], Mapping[int, Any]]  # compartments marked "needs check"
    queued_receipts: Callable[[], int]
    journal: Journal  # stats, safe mode, and the technician codes already seen


@dataclass(frozen=True)
class Diagnostics:
    """One reading of everything; a part that could not be read says why (never raises)."""

    versions: tuple[NamedValue, ...]
    config: tuple[NamedValue, ...]
    server: ServerCheck
    sync: SyncStatus | None
    printer: DeviceCheck
    camera: DeviceCheck | None  # None: this kiosk runs without a scanner
    doors: tuple[DoorReading, ...]
    flagged: tuple[int, ...]  # compartments marked "needs check"
    queued_receipts: int
    journal: JournalStats | None
    safe_mode: str | None
    errors: tuple[ErrorLine, ...]
    problems: tuple[str, ...] = ()  # parts that failed to read, for the log


def versions() -> tuple[NamedValue, ...]:
    out = [NamedValue("kiosk", __version__), NamedValue("python", platform.python_version())]
    for name in DISTRIBUTIONS:
        try:
            out.append(NamedValue(name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return tuple(out)


def config_summary(cfg) -> tuple[NamedValue, ...]:
    k, s, p, lk, off = cfg.kiosk, cfg.scanner, cfg.printer, cfg.locker, cfg.offline
    numbers = ",".join(str(c.number) for c in lk.compartments)
    return (
        NamedValue("kiosk", f"{k.id} ({k.store_name_en}), {k.language}, {k.timezone}"),
        NamedValue("server", cfg.server.url),
        NamedValue("scanner", f"{s.kind} {s.device} {s.width}x{s.height} {s.decoder}"),
        NamedValue("printer", f"{p.kind} {p.port} {p.baudrate} {p.paper_mm} mm"),
        NamedValue("locker", f"{lk.kind}, compartments {numbers}"),
        NamedValue("offline", f"{off.per_member_daily_points}/{off.per_kiosk_daily_points} pts"),
        NamedValue("state_dir", str(k.state_dir)),
    )


def gather(
    k: KioskReadings, errors: ErrorBuffer | None = None, clock=time.monotonic
) -> Diagnostics:
    """Read everything (blocking: the server and the printer are asked)."""
    problems: list[str] = []

    def read(what: str, fn: Callable[[], Any], default: Any) -> Any:
        try:
            return fn()
        except Exception as exc:  # one broken part must not hide the others
            log.warning("diagnostics: %s unreadable: %s", what, exc)
            problems.append(f"{what}: {exc}")
            return default

    unread = DeviceCheck("printer", False, "unreadable")
    url, dev = k.config.server.url, k.devices
    return Diagnostics(
        versions=versions(),
        config=config_summary(k.config),
        server=read("server", lambda: check_server(k.server_health, url, clock),
                    ServerCheck(url, False, None, "unreadable")),
        sync=read("sync", k.sync_status, None),
        printer=read("printer", lambda: check_printer(dev.printer), unread),
        camera=read("camera", lambda: check_camera(dev.scanner, clock),
                    DeviceCheck("camera", False, "?")),
        doors=read("doors", lambda: read_doors(dev.locker, dev.compartments), ()),
        flagged=read("flags", lambda: tuple(sorted(k.flagged())), ()),
        queued_receipts=read("receipts", k.queued_receipts, 0),
        journal=read("journal", k.journal.stats, None),
        safe_mode=k.journal.safe_mode_reason,
        errors=errors.lines() if errors is not None else (),
        problems=tuple(problems),
    )  # fmt: skip


# ---- the self-test on the running devices -----------------------------------------------------


def run_live_selftest(
    k: KioskReadings, now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
) -> list[DeviceCheck]:
    """Camera health, each door sensor, the journal, then a self-test page with the results."""
    dev = k.devices
    checks: list[DeviceCheck] = []
    camera = check_camera(dev.scanner)
    checks += [camera] if camera is not None else []
    checks += door_checks(read_doors(dev.locker, dev.compartments))
    reason = k.journal.safe_mode_reason
    checks.append(DeviceCheck("journal", reason is None, reason or "writable"))
    printer = check_printer(dev.printer)
    if printer.ok:
        cfg = k.config
        page = SelfTestPage(
            store_name_zh=cfg.kiosk.store_name_zh, store_name_en=cfg.kiosk.store_name_en,
            kiosk_id=cfg.kiosk.id, printed_at=now(), versions=versions()[:2],
            config=config_summary(cfg), devices=tuple(checks),
        )  # fmt: skip
        try:
            dev.printer.print_receipt(page)
            printer = DeviceCheck("printer", True, "test page printed")
        except KioskError as exc:
            printer = DeviceCheck("printer", False, str(exc))
    checks.append(printer)
    return checks


class TechStep(enum.Enum):
    IDLE = "idle"
    REFUSED = "refused"  # the code did not verify: nothing is shown
    READY = "ready"  # verified: the report (being gathered while ``busy``)


@dataclass(frozen=True)
class TechState:
    step: TechStep = TechStep.IDLE
    busy: bool = False
    testing: bool = False  # the busy work is a self-test (else reading the report)
    code_nonce: str | None = None  # the verified code's; the server's record says whose
    report: Diagnostics | None = None
    checks: tuple[DeviceCheck, ...] = ()  # the last self-test
    refusal: str | None = None  # why the code was refused (technical English)
    idle_left_s: float | None = None
    seq: int = field(default=0, compare=False)


class DiagnosticsFlow:
    """Technician code -> report (-> self-test) -> back; leaves by itself when idle."""

    def __init__(self, readings: KioskReadings, *, post, on_exit, run=None,
                 errors: ErrorBuffer | None = None, now=time.time, clock=time.monotonic,
                 idle_s: float = 180.0) -> None:  # fmt: skip
        self.readings, self.post, self.on_exit, self.errors = readings, post, on_exit, errors
        self.run = run or (lambda fn: threading.Thread(target=fn, daemon=True).start())
        self.now, self.clock, self.idle_s = now, clock, idle_s
        self.state = TechState()
        self._guard = technician_guard(readings.journal)
        self._listeners: list[Callable[[TechState], None]] = []
        self._lock = threading.Lock()
        self._code: str | None = None
        self._last = clock()

    def subscribe(self, listener: Callable[[TechState], None]) -> None:
        self._listeners.append(listener)

    def _set(self, fresh: bool = False, code: str | None = None, **changes: Any) -> None:
        """Apply ``changes`` (to a blank state if ``fresh``); a worker passes the ``code`` it ran
        for, and its result is dropped once the technician left or scanned another code."""
        with self._lock:
            if code is not None and code != self._code:
                return
            base = TechState(seq=self.state.seq) if fresh else self.state
            self.state = snapshot = replace(base, seq=base.seq + 1, **changes)
        self.post(lambda: [listener(snapshot) for listener in list(self._listeners)])

    def begin(self, code: str) -> None:
        if code == self._code and self.state.step is not TechStep.IDLE:
            return
        self._code, self._last = code, self.clock()
        cfg = self.readings.config
        try:
            who = verify_technician(
                code, cfg.server.public_key_file, int(self.now()), cfg.kiosk.id, self._guard
            )
        except KioskError as exc:  # CodeRejected, ConfigError, JournalError (keeping the nonce)
            log.warning("technician code refused: %s", exc)
            self._set(True, step=TechStep.REFUSED, refusal=str(exc))
            return
        # the server's technician_codes table says whom this nonce was issued to
        log.info("technician code %s opened the diagnostics", who.nonce)
        self._set(True, step=TechStep.READY, code_nonce=who.nonce)
        self._work(selftest=False)

    def refresh(self) -> None:
        self._work(selftest=False)

    def selftest(self) -> None:
        self._work(selftest=True)

    def _work(self, *, selftest: bool) -> None:
        if self.state.step is not TechStep.READY or self.state.busy:
            return
        self._last, code = self.clock(), self._code
        self._set(busy=True, testing=selftest, **({"checks": ()} if selftest else {}))
        self.run(lambda: self._worker(code, selftest))

    def _worker(self, code: str | None, selftest: bool) -> None:
        changes: dict[str, Any] = {}
        try:
            if selftest:
                changes["checks"] = tuple(run_live_selftest(self.readings))
            changes["report"] = gather(self.readings, self.errors)
        except Exception as exc:  # the technician must see it, not a screen stuck on "busy"
            log.exception("diagnostics failed")
            changes["checks"] = (DeviceCheck("diagnostics", False, f"{type(exc).__name__}: {exc}"),)
        self._last = self.clock()
        self._set(code=code, busy=False, **changes)

    def back(self) -> None:
        self._code = None
        self._set(True)
        self.on_exit()

    def tick(self) -> None:
        if self.state.step is TechStep.IDLE or self.state.busy:
            return
        left = self.idle_s - (self.clock() - self._last)
        if left <= 0:
            self.back()
        elif int(left) != int(self.state.idle_left_s or 0):
            self._set(idle_left_s=left)
