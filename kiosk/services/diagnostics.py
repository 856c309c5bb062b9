"""What a technician sees, without Kivy: versions, config, server, sync, devices, journal, errors.

``gather(core)`` reads everything once (it blocks on the server's health call and the printer's
status query: run it on a worker); ``run_live_selftest(core)`` checks the running devices
(``kiosk selftest`` builds its own, which the app cannot while it holds them);
``maintenance_reason(core)`` says whether the kiosk can serve members at all;
``verify_technician`` checks a technician code (kind T) offline with the store's key.
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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any

from kiosk import __version__
from kiosk.domain.member_codes import CodeKind, CodeRejected, VerifiedCode, load_public_keys
from kiosk.domain.member_codes import verify_code as _verify_code
from kiosk.domain.receipts import Bilingual, DeviceCheck, NamedValue, SelfTestPage
from kiosk.errors import ConfigError, KioskError
from kiosk.i18n import Translator
from kiosk.ports import DoorState, PaperState
from kiosk.storage.journal import JournalStats
from kiosk.sync.worker import SyncStatus

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
class ServerCheck:
    url: str
    reachable: bool
    latency_ms: float | None  # of GET /v1/health, retries included
    detail: str  # the server's status and time, or what went wrong


@dataclass(frozen=True)
class DoorReading:
    number: int
    state: DoorState | None  # None: the sensor could not be read
    detail: str = ""


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


def check_server(core, clock: Callable[[], float] = time.monotonic) -> ServerCheck:
    url, start = core.config.server.url, clock()
    try:
        info = core.client.health()
    except KioskError as exc:
        return ServerCheck(url, False, None, str(exc))
    ms = (clock() - start) * 1000
    return ServerCheck(url, True, ms, f"{info.get('status')}, {info.get('server_time')}")


def check_printer(core) -> DeviceCheck:
    try:
        status = core.printer.status()
    except KioskError as exc:
        return DeviceCheck("printer", False, str(exc))
    detail = f"paper {status.paper.value}" if status.ready else status.detail
    return DeviceCheck("printer", status.ready, detail)


def check_camera(core, clock: Callable[[], float] = time.monotonic) -> DeviceCheck | None:
    if core.scanner is None:
        return None
    health = core.scanner.health()
    detail = f"{health.detail}, {health.frames} frames"
    if health.last_decode_ms is not None:
        detail += f", last decode {health.last_decode_ms:.1f} ms"
    if health.last_frame_at is not None:
        detail += f", last frame {max(0.0, clock() - health.last_frame_at):.1f} s ago"
    return DeviceCheck("camera", health.ok, detail)


def read_doors(core) -> tuple[DoorReading, ...]:
    out = []
    for c in core.config.locker.compartments:
        try:
            out.append(DoorReading(c.number, core.locker.door_state(c.number)))
        except KioskError as exc:
            out.append(DoorReading(c.number, None, str(exc)))
    return tuple(out)


def gather(core, errors: ErrorBuffer | None = None, clock=time.monotonic) -> Diagnostics:
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
    return Diagnostics(
        versions=versions(),
        config=config_summary(core.config),
        server=read("server", lambda: check_server(core, clock),
                    ServerCheck(core.config.server.url, False, None, "unreadable")),
        sync=read("sync", core.sync.status, None),
        printer=read("printer", lambda: check_printer(core), unread),
        camera=read("camera", lambda: check_camera(core, clock), DeviceCheck("camera", False, "?")),
        doors=read("doors", lambda: read_doors(core), ()),
        flagged=read("flags", lambda: tuple(sorted(core.engine.flagged())), ()),
        queued_receipts=read("receipts", lambda: len(core.receipts), 0),
        journal=read("journal", core.journal.stats, None),
        safe_mode=core.journal.safe_mode_reason,
        errors=errors.lines() if errors is not None else (),
        problems=tuple(problems),
    )  # fmt: skip


# ---- the self-test on the running devices -----------------------------------------------------


def run_live_selftest(core, now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)):
    """Camera health, each door sensor, the journal, then a self-test page with the results."""
    checks: list[DeviceCheck] = []
    camera = check_camera(core)
    checks += [camera] if camera is not None else []
    for door in read_doors(core):
        ok = door.state is not None
        detail = f"sensor reads {door.state.value}" if door.state is not None else door.detail
        checks.append(DeviceCheck(f"door {door.number}", ok, detail))
    reason = core.journal.safe_mode_reason
    checks.append(DeviceCheck("journal", reason is None, reason or "writable"))
    printer = check_printer(core)
    if printer.ok:
        cfg = core.config
        page = SelfTestPage(
            store_name_zh=cfg.kiosk.store_name_zh, store_name_en=cfg.kiosk.store_name_en,
            kiosk_id=cfg.kiosk.id, printed_at=now(), versions=versions()[:2],
            config=config_summary(cfg), devices=tuple(checks),
        )  # fmt: skip
        try:
            core.printer.print_receipt(page)
            printer = DeviceCheck("printer", True, "test page printed")
        except KioskError as exc:
            printer = DeviceCheck("printer", False, str(exc))
    checks.append(printer)
    return checks


# ---- can the kiosk serve members? ---------------------------------------------------------------

_texts: Translator | None = None


def printer_down(core, tries: int = 2, pause_s: float = 0.5) -> str | None:
    """Why the printer cannot print (None: it can, or it is only out of paper). One silent
    or offline answer is asked again: a status query can miss its deadline on a busy kiosk,
    and one missed answer must not take the kiosk out of service."""
    detail: str | None = None
    for attempt in range(tries):
        if attempt:
            time.sleep(pause_s)
        try:
            status = core.printer.status()
        except KioskError as exc:
            detail = str(exc)
            continue
        # ESC/POS printers report "offline" while out of paper: that alone is no reason
        paper_out_only = status.paper is PaperState.OUT and not status.cover_open
        if (status.online and not status.cover_open) or paper_out_only:
            return None
        detail = status.detail
    return detail


def maintenance_reason(core, texts: Translator | None = None) -> Bilingual | None:
    """What staff must fix before members can be served (None: nothing). Blocks briefly on the
    printer's status query: call it from a worker. Paper out is not a reason (receipts wait in
    the queue); a printer that does not answer, a locker without one readable door, a failing
    camera, a journal in safe mode and a kiosk not enrolled are."""
    global _texts
    texts = texts or _texts or (_texts := Translator("zh"))
    found: list[tuple[str, dict[str, object]]] = []
    if core.journal.safe_mode:
        found.append(("maintenance.journal", {"detail": core.journal.safe_mode_reason}))
    if core.identifier is None:
        found.append(("maintenance.not_enrolled", {}))
    printer_fault = printer_down(core)
    if printer_fault is not None:
        found.append(("maintenance.printer", {"detail": printer_fault}))
    doors = read_doors(core)
    if doors and all(d.state is None for d in doors):
        found.append(("maintenance.locker", {"detail": doors[0].detail}))
    camera = check_camera(core)
    if camera is not None and not camera.ok:
        found.append(("maintenance.camera", {"detail": camera.detail}))
    if not found:
        return None
    zh = "\n".join(texts.text(key, "zh", **f) for key, f in found)
    return Bilingual(zh, "\n".join(texts.text(key, "en", **f) for key, f in found))


# ---- the technician code --------------------------------------------------------------------------


def verify_technician(code: str, key_file, now_s: int) -> VerifiedCode:
    """A technician code (kind T) checked with the store's public keys (the file as the sync
    worker last wrote it): CodeRejected, or ConfigError when the kiosk has no key (not
    enrolled: use ``kiosk selftest`` on the device)."""
    try:
        key = load_public_keys(key_file.read_text())
    except OSError as exc:
        raise ConfigError(f"no store key at {key_file} ({exc}): enroll the kiosk") from exc
    return _verify_code(code, key, now_s, kinds=frozenset({CodeKind.TECHNICIAN}))


class TechStep(enum.Enum):
    IDLE = "idle"
    REFUSED = "refused"  # the code did not verify: nothing is shown
    READY = "ready"  # verified: the report (being gathered while ``busy``)


@dataclass(frozen=True)
class TechState:
    step: TechStep = TechStep.IDLE
    busy: bool = False
    testing: bool = False  # the busy work is a self-test (else reading the report)
    technician: str | None = None
    report: Diagnostics | None = None
    checks: tuple[DeviceCheck, ...] = ()  # the last self-test
    refusal: str | None = None  # why the code was refused (technical English)
    idle_left_s: float | None = None
    seq: int = field(default=0, compare=False)


class DiagnosticsFlow:
    """Technician code -> report (-> self-test) -> back; leaves by itself when idle."""

    def __init__(self, core, *, post, on_exit, run=None, errors: ErrorBuffer | None = None,
                 now=time.time, clock=time.monotonic, idle_s: float = 180.0) -> None:  # fmt: skip
        self.core, self.post, self.on_exit, self.errors = core, post, on_exit, errors
        self.run = run or (lambda fn: threading.Thread(target=fn, daemon=True).start())
        self.now, self.clock, self.idle_s = now, clock, idle_s
        self.state = TechState()
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
        try:
            who = verify_technician(code, self.core.config.server.public_key_file, int(self.now()))
        except (CodeRejected, ConfigError) as exc:
            log.warning("technician code refused: %s", exc)
            self._set(True, step=TechStep.REFUSED, refusal=str(exc))
            return
        log.info("technician %s opened the diagnostics", who.subject)
        self._set(True, step=TechStep.READY, technician=who.subject)
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
                changes["checks"] = tuple(run_live_selftest(self.core))
            changes["report"] = gather(self.core, self.errors)
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
