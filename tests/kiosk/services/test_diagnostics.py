"""The technician's diagnostics (no Kivy): the report on a wired core against the real store
server on loopback, each part failing on its own with stand-in devices, the maintenance
decision, the live self-test, the technician code and the flow the screen renders."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import kiosk.services.diagnostics as diagnostics
from drivers.printer import make_printer
from drivers.printer.sim_printer import VirtualPrinter
from kiosk.domain.member_codes import CodeRejected
from kiosk.errors import ConfigError, LockerError, PrinterError, Unreachable
from kiosk.i18n import Translator
from kiosk.ports import DoorState, PaperState, PrinterStatus, ScannerHealth
from kiosk.services.diagnostics import (
    DiagnosticsFlow,
    ErrorBuffer,
    TechStep,
    gather,
    install_error_buffer,
    run_live_selftest,
)
from kiosk.services.health import printer_down
from kiosk.services.technician_codes import (
    TECHNICIAN_NONCES,
    technician_guard,
    verify_technician,
)
from kiosk.storage.journal import SAFE_MODE_NAME, Journal
from kiosk.sync.client import StoreServerClient
from kiosk.sync.records import SyncSettings
from kiosk.wiring import build_core, maintenance_check, readings_of
from storeserver import codes, kiosks

from ..test_wiring import config
from .rig import KIOSK, ServerSide
from .test_restock import flag


@pytest.fixture
def server(tmp_path) -> Iterator[ServerSide]:
    s = ServerSide(tmp_path / "server")
    yield s
    s.stop()


@pytest.fixture
def core(tmp_path, server):
    """The wired core as the app runs it: simulated locker and printer, the real server."""
    cfg = config(tmp_path, server.url)
    enroller = StoreServerClient.from_config(cfg.server)
    enroller.enroll(server.enrollment_code(), KIOSK)
    enroller.close()
    paper = VirtualPrinter(tmp_path / "paper")
    c = build_core(cfg, printer=make_printer(cfg.printer, sim=paper),
                   sync_settings=SyncSettings(heartbeat_s=0.3, refresh_s=0.3))  # fmt: skip
    c.paper = paper
    c.start()
    yield c
    c.stop()
    paper.stop()


@pytest.fixture
def errors() -> Iterator[ErrorBuffer]:
    buffer = install_error_buffer()
    yield buffer
    logging.getLogger().removeHandler(buffer)


def signed(server: ServerSide, kind=codes.CodeKind.TECHNICIAN, subject=KIOSK, **kw):
    """A code signed with the store's key by hand (as the demo made technician codes)."""
    return codes.issue(server.store.signing_key, kind, subject, int(time.time()), **kw)


def technician_code(server: ServerSide) -> str:
    """A technician code the server issues for this kiosk (storeserver technician-code)."""
    return server.technician_code(KIOSK)


class Printer:
    def __init__(self, status: PrinterStatus | Exception) -> None:
        self._status, self.printed = status, []

    def status(self) -> PrinterStatus:
        if isinstance(self._status, Exception):
            raise self._status
        return self._status

    def print_receipt(self, receipt) -> None:
        self.printed.append(receipt)


class Locker:
    def __init__(self, broken: set[int] = frozenset(), open_: set[int] = frozenset()) -> None:
        self.broken, self.open = broken, open_

    def door_state(self, n: int) -> DoorState:
        if n in self.broken:
            raise LockerError(f"compartment {n}: sensor unreadable")
        return DoorState.OPEN if n in self.open else DoorState.CLOSED


class Down:
    def health(self):
        raise Unreachable("store server at http://127.0.0.1:1 unreachable: connection refused")


READY = PrinterStatus(True, PaperState.OK)


@pytest.fixture
def fake(tmp_path) -> Iterator[SimpleNamespace]:
    """A core of stand-ins around a real journal: each test breaks one part (the probes see it
    through the composition root's ``readings_of`` / ``maintenance_check``, as the app's do)."""
    journal = Journal.open(tmp_path / "state")
    engine = SimpleNamespace(flags=SimpleNamespace(flagged=lambda: {3: {"txn_id": "t"}}))
    sync = SimpleNamespace(status=lambda: (_ for _ in ()).throw(RuntimeError("sync gone")))
    yield SimpleNamespace(
        config=config(tmp_path, "http://127.0.0.1:1"), client=Down(), sync=sync, journal=journal,
        printer=Printer(READY), scanner=None, locker=Locker(), engine=engine, receipts=[],
        identifier=object(),
    )  # fmt: skip
    journal.close()


# ---- the report ---------------------------------------------------------------------------------


def test_the_report_on_a_running_kiosk(core, errors):
    flag(SimpleNamespace(flags=core.engine.flags), 3)  # a member's door jammed earlier
    core.locker.sim.force_open(2)
    deadline = time.monotonic() + 5
    while core.locker.door_state(2) is not DoorState.OPEN:  # the sensor reading is debounced
        assert time.monotonic() < deadline
        time.sleep(0.02)
    logging.getLogger("kiosk.test").warning("printer hiccup on %s", "/dev/ttyUSB0")
    report = gather(readings_of(core), errors)
    names = {v.name: v.value for v in report.versions}
    assert names["kiosk"] and names["python"].startswith("3.") and names["kivy"].startswith("2.")
    assert report.server.reachable and 0 < report.server.latency_ms < 5000
    assert report.server.url == core.config.server.url and "ok" in report.server.detail
    assert report.sync is not None and report.sync.outbox_length >= 0
    assert report.printer.ok and "paper ok" in report.printer.detail
    assert report.camera is None  # no scanner in this core
    states = {d.number: d.state for d in report.doors}
    assert states == {n: DoorState.CLOSED for n in (1, 3, 4, 5, 6)} | {2: DoorState.OPEN}
    assert report.flagged == (3,) and report.queued_receipts == 0 and report.safe_mode is None
    assert report.journal.records >= 1 and report.journal.log_bytes > 0
    assert any("printer hiccup on /dev/ttyUSB0" in e.message for e in report.errors)
    assert dict((v.name, v.value) for v in report.config)["server"] == core.config.server.url


def test_each_part_fails_on_its_own_and_the_report_still_comes(fake):
    fake.printer = Printer(PrinterError("printer on /dev/ttyUSB0 does not answer"))
    fake.locker = Locker(broken={4})
    fake.scanner = SimpleNamespace(health=lambda: ScannerHealth(False, "camera missing"))
    report = gather(readings_of(fake))
    assert not report.server.reachable and "connection refused" in report.server.detail
    assert report.server.latency_ms is None
    assert report.sync is None and any("sync gone" in p for p in report.problems)
    assert not report.printer.ok and "does not answer" in report.printer.detail
    assert not report.camera.ok and "camera missing" in report.camera.detail
    door4 = next(d for d in report.doors if d.number == 4)
    assert door4.state is None and "unreadable" in door4.detail
    assert report.flagged == (3,) and report.errors == ()


def test_the_error_buffer_keeps_the_last_warnings_once_installed(errors):
    assert install_error_buffer() is errors  # idempotent
    log = logging.getLogger("kiosk.somewhere")
    log.info("not kept")
    for n in range(60):
        log.warning("warning %d", n)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    lines = errors.lines()
    assert len(lines) == 50 and lines[0].message == "warning 11"
    assert lines[-1].message == "failed (ValueError)" and lines[-1].level == "ERROR"
    assert all("not kept" not in line.message for line in lines)


# ---- maintenance --------------------------------------------------------------------------------


def test_a_healthy_kiosk_needs_no_maintenance_and_paper_out_is_not_a_reason(fake):
    assert maintenance_check(fake)() is None
    fake.printer = Printer(PrinterStatus(True, PaperState.OUT, detail="paper out"))
    assert maintenance_check(fake)() is None
    # what the serial driver really reports: ESC/POS sets "offline" while the paper is out
    fake.printer = Printer(PrinterStatus(False, PaperState.OUT, detail="paper out"))
    assert maintenance_check(fake)() is None


@pytest.mark.parametrize(
    ("breakage", "zh", "en"),
    [
        ("printer", "打印机", "receipt printer is not working"),
        ("cover", "打印机", "cover is shut"),
        ("locker", "礼品柜", "gift locker cannot be read"),
        ("camera", "摄像头", "QR camera is not working"),
        ("enrol", "尚未登记", "not enrolled"),
    ],
)
def test_a_device_the_kiosk_needs_puts_it_in_maintenance(fake, breakage, zh, en):
    if breakage == "printer":
        fake.printer = Printer(PrinterError("printer on /dev/ttyUSB0 does not answer"))
    elif breakage == "cover":
        fake.printer = Printer(PrinterStatus(True, PaperState.OK, cover_open=True, detail="cover"))
    elif breakage == "locker":
        fake.locker = Locker(broken={1, 2, 3, 4, 5, 6})
    elif breakage == "camera":
        fake.scanner = SimpleNamespace(health=lambda: ScannerHealth(False, "no /dev/video0"))
    else:
        fake.identifier = None
    reason = maintenance_check(fake, Translator("en"))()
    assert reason is not None and zh in reason.zh and en in reason.en


class FlakyPrinter(Printer):
    """Silent once (a status answer that missed its deadline), then fine."""

    def __init__(self) -> None:
        super().__init__(READY)
        self.asked = 0

    def status(self) -> PrinterStatus:
        self.asked += 1
        if self.asked == 1:
            raise PrinterError("printer on /dev/ttyUSB0 does not answer")
        return READY


def test_one_missed_printer_answer_is_asked_again_not_maintenance(fake):
    fake.printer = FlakyPrinter()
    assert printer_down(fake.printer, pause_s=0) is None
    assert fake.printer.asked == 2
    fake.printer = Printer(PrinterError("printer on /dev/ttyUSB0 does not answer"))
    assert "does not answer" in printer_down(fake.printer, pause_s=0)


def test_one_unreadable_door_is_not_maintenance_a_journal_in_safe_mode_is(fake, tmp_path):
    fake.locker = Locker(broken={2})
    assert maintenance_check(fake)() is None
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / SAFE_MODE_NAME).write_text("journal corrupt: test\n", encoding="utf-8")
    with Journal.open(folder) as journal:
        fake.journal = journal
        reason = maintenance_check(fake)()
    assert "safe mode" in reason.en and "journal corrupt: test" in reason.zh


# ---- the live self-test -------------------------------------------------------------------------


def test_the_live_selftest_reads_every_door_and_prints_a_page(core):
    checks = {c.name: c for c in run_live_selftest(readings_of(core))}
    assert [checks[f"door {n}"].ok for n in range(1, 7)] == [True] * 6
    assert "sensor reads closed" in checks["door 1"].detail
    assert checks["journal"].ok and checks["printer"].ok
    page = core.paper.wait_for_receipts(1)[0]
    assert "door 1" in page.text and core.config.kiosk.id in page.text


def test_the_live_selftest_prints_nothing_when_the_printer_is_not_ready(fake):
    fake.printer = Printer(PrinterStatus(True, PaperState.OUT, detail="paper out: load a roll"))
    checks = run_live_selftest(readings_of(fake))
    assert checks[-1].name == "printer" and not checks[-1].ok and "load a roll" in checks[-1].detail
    assert fake.printer.printed == []


# ---- the technician code ------------------------------------------------------------------------


def test_a_technician_code_verifies_with_the_store_key_and_nothing_else_does(core, server):
    key_file = core.config.server.public_key_file
    now = int(time.time())

    def verify(code: str, at: int = now, key=key_file):
        return verify_technician(code, key, at, KIOSK)

    assert verify(technician_code(server)).subject == KIOSK
    with pytest.raises(CodeRejected) as member:
        verify(signed(server, codes.CodeKind.MEMBER, "M0002"))
    assert member.value.reason == "wrong_kind"
    with pytest.raises(CodeRejected) as staff:
        verify(signed(server, codes.CodeKind.STAFF, "S0001"))
    assert staff.value.reason == "wrong_kind"
    other = codes.issue(Ed25519PrivateKey.generate(), codes.CodeKind.TECHNICIAN, KIOSK, now)
    with pytest.raises(CodeRejected) as forged:
        verify(other)
    assert forged.value.reason == "forged"
    with pytest.raises(CodeRejected) as expired:
        verify(technician_code(server), now + 15 * 60)
    assert expired.value.reason == "expired"
    with pytest.raises(ConfigError, match="enroll"):
        verify(technician_code(server), key=key_file.with_name("missing.pub"))


def test_a_technician_code_for_another_kiosk_is_refused(core, server):
    # the demo's old hand-signed code (subject T0001) and a code issued for another kiosk
    for code in (signed(server, subject="T0001"), signed(server, subject="kiosk-02")):
        with pytest.raises(CodeRejected) as refused:
            verify_technician(code, core.config.server.public_key_file, int(time.time()), KIOSK)
        assert refused.value.reason == "wrong_kiosk"
        assert f"storeserver technician-code --kiosk {KIOSK}" in str(refused.value)


def test_the_flow_shows_nothing_for_another_kiosks_code_and_keeps_no_nonce(core, server):
    with server.store.db.transaction() as conn:  # another kiosk of the store, enrolled
        kiosks.enroll(conn, server.clock, server.enrollment_code("kiosk-02"), "kiosk-02")
    flow, _ = flow_for(core)
    flow.begin(server.technician_code("kiosk-02"))
    assert flow.state.step is TechStep.REFUSED and flow.state.report is None
    assert "is for kiosk kiosk-02, not this one" in flow.state.refusal
    assert core.journal.all(TECHNICIAN_NONCES) == {}


def test_a_technician_code_is_taken_once(core, server):
    code = technician_code(server)
    flow, _ = flow_for(core)
    flow.begin(code)
    assert flow.state.step is TechStep.READY
    flow.back()
    assert core.journal.get(TECHNICIAN_NONCES, codes.parse(code)[0].nonce) is not None
    flow, _ = flow_for(core)  # a new flow reads the nonce from the journal
    flow.begin(code)
    assert flow.state.step is TechStep.REFUSED
    assert "used here before" in flow.state.refusal and flow.state.report is None
    flow.begin(technician_code(server))  # a fresh one works
    assert flow.state.step is TechStep.READY


def test_in_safe_mode_a_technician_code_still_opens_once(tmp_path, core, server):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / SAFE_MODE_NAME).write_text("journal corrupt: test\n", encoding="utf-8")
    code = technician_code(server)
    key_file, now = core.config.server.public_key_file, int(time.time())
    with Journal.open(folder) as journal:
        guard = technician_guard(journal)  # read-only journal: nonces kept in memory
        assert verify_technician(code, key_file, now, KIOSK, guard).subject == KIOSK
        with pytest.raises(CodeRejected) as again:
            verify_technician(code, key_file, now, KIOSK, guard)
    assert again.value.reason == "replayed"


# ---- the flow -----------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def flow_for(core, **kw) -> tuple[DiagnosticsFlow, list]:
    exits: list[int] = []
    flow = DiagnosticsFlow(readings_of(core), post=lambda fn: fn(), run=lambda fn: fn(),
                           on_exit=lambda: exits.append(1), **kw)  # fmt: skip
    return flow, exits


def test_the_flow_shows_the_report_only_for_a_valid_code_and_runs_the_selftest(core, server):
    flow, exits = flow_for(core)
    flow.begin(signed(server, codes.CodeKind.MEMBER, "M0002"))
    assert flow.state.step is TechStep.REFUSED and flow.state.report is None
    assert "technician" in flow.state.refusal
    code = technician_code(server)
    flow.begin(code)
    assert flow.state.step is TechStep.READY
    assert flow.state.code_nonce == codes.parse(code)[0].nonce
    assert flow.state.report is not None and flow.state.report.server.reachable
    assert not flow.state.busy
    flow.selftest()
    assert {c.name for c in flow.state.checks} >= {"door 1", "journal", "printer"}
    flow.back()
    assert exits == [1] and flow.state.step is TechStep.IDLE and flow.state.report is None


def test_the_flow_leaves_by_itself_when_idle(core, server):
    clock = Clock()
    flow, exits = flow_for(core, clock=clock, idle_s=120)
    flow.begin(technician_code(server))
    clock.t += 100
    flow.tick()
    assert flow.state.idle_left_s == pytest.approx(20)
    clock.t += 20
    flow.tick()
    assert exits == [1] and flow.state.step is TechStep.IDLE


def test_a_late_report_after_back_is_dropped_and_a_crash_never_leaves_it_busy(
    core, server, monkeypatch
):
    jobs: list = []
    flow = DiagnosticsFlow(readings_of(core), post=lambda fn: fn(), run=jobs.append,
                           on_exit=lambda: None)  # fmt: skip
    flow.begin(technician_code(server))
    assert flow.state.busy and not flow.state.testing and len(jobs) == 1
    flow.back()
    jobs.pop()()  # the report arrives after the technician left
    assert flow.state.step is TechStep.IDLE and flow.state.report is None

    flow.begin(technician_code(server))
    jobs.pop()()

    def broken(readings):
        raise RuntimeError("self-test exploded")

    monkeypatch.setattr(diagnostics, "run_live_selftest", broken)
    flow.selftest()
    assert flow.state.busy and flow.state.testing
    jobs.pop()()
    assert not flow.state.busy and not flow.state.checks[0].ok
    assert "self-test exploded" in flow.state.checks[0].detail
