"""The staff flow (no Kivy) on the real restock pieces: the bench rig's engine, journal, receipt
queue, the locker simulator and the virtual printer; sign-in is a scripted authenticator (the
UI test signs in against the real store server)."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.domain.receipts import RestockLine, RestockSlip
from kiosk.domain.staff import StaffAuthUnavailable, StaffLocked, StaffRejected
from kiosk.i18n import Translator, load_catalog, render
from kiosk.ports import PaperState
from kiosk.services.staff_auth import StaffSession
from kiosk.services.staff_session import DoorPhase, StaffFlow, StaffState, StaffStep

from .rig import TZ, KioskSide
from .test_restock import CATALOG, FakeClock, flag

BADGE = "LK1.S.S0001.badge"
WANG = StaffSession("S0001", "王店长 / Manager Wang", online=True)


class ScriptedAuth:
    """The PIN 246810 signs in; other PINs count down to a five-minute lock, as the server's."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.wrong = 0
        self.gate: threading.Event | None = None  # set: the check waits for it (a slow server)
        self.error: Exception | None = None

    def __call__(self, badge: str, pin: str) -> StaffSession:
        self.calls.append((badge, pin))
        if self.gate is not None:
            self.gate.wait(5)
        if self.error is not None:
            raise self.error
        if pin == "246810":
            return WANG
        self.wrong += 1
        if self.wrong >= 5:
            raise StaffLocked(300)
        left = 5 - self.wrong
        raise StaffRejected("bad_pin", "staff.auth.wrong_pin_left", attempts_left=left, left=left)


class Rig:
    def __init__(self, kiosk: KioskSide, clock: FakeClock, alerts=None) -> None:
        self.kiosk, self.clock, self.auth = kiosk, clock, ScriptedAuth()
        self.service = kiosk.restock_service(catalog=CATALOG, poll_s=0.02, clock=clock)
        self.exits = 0
        self.threads: list[threading.Thread] = []
        self.seen: list[StaffState] = []
        self.flow = StaffFlow(
            authenticate=self.auth, restock=self.service, receipts=kiosk.receipts,
            flagged=kiosk.flags.flagged, compartments=range(1, 7), texts=Translator("zh"),
            post=lambda fn: fn(), run=self.run, on_exit=self.exit, clock=clock, idle_s=60, door_poll_s=0.05,
            alerts=alerts,
        )  # fmt: skip
        self.flow.subscribe(self.seen.append)

    def exit(self) -> None:
        self.exits += 1

    def run(self, fn) -> None:
        thread = threading.Thread(target=fn, daemon=True)
        self.threads.append(thread)
        thread.start()

    def join(self) -> None:
        """Every worker has returned (door watchers end once the flow moved on)."""
        for thread in self.threads:
            thread.join(5)
            assert not thread.is_alive(), "a staff worker is stuck"

    @property
    def state(self) -> StaffState:
        return self.flow.state

    def settle(self, timeout_s: float = 5.0) -> StaffState:
        """Wait for the worker: the flow is no longer busy."""
        deadline = time.monotonic() + timeout_s
        while self.flow.state.busy:
            assert time.monotonic() < deadline, f"still busy: {self.flow.state}"
            time.sleep(0.01)
        return self.flow.state

    def until(self, predicate, what: str, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.state}"
            time.sleep(0.01)

    def type_pin(self, pin: str) -> StaffState:
        for digit in pin:
            self.flow.key(digit)
        self.flow.submit_pin()
        return self.settle()

    def sign_in(self) -> StaffState:
        self.flow.begin(BADGE)
        return self.type_pin("246810")


@pytest.fixture
def rig(tmp_path) -> Iterator[Rig]:
    kiosk = KioskSide(tmp_path / "kiosk", "http://127.0.0.1:1")
    r = Rig(kiosk, FakeClock())
    yield r
    r.settle()
    r.flow._leave()
    r.join()
    kiosk.close()


def slip(number: int = 1) -> RestockSlip:
    line = RestockLine(number, None, 0, 0)
    at = dt.datetime(2025, 5, 1, 10, 0, tzinfo=TZ)
    return RestockSlip(
        store_name_zh="测试门店", store_name_en="Test store", kiosk_id="kiosk-01", printed_at=at,
        staff_id="S0009", lines=(line,),
    )  # fmt: skip


# ---- the PIN ------------------------------------------------------------------------------------


def test_the_pin_is_masked_short_pins_never_reach_the_check_and_a_wrong_one_says_attempts(rig):
    rig.flow.begin(BADGE)
    assert rig.state.step is StaffStep.PIN and "员工密码" in rig.state.message.zh
    for digit in "12":
        rig.flow.key(digit)
    rig.flow.key("x")  # not a digit: ignored
    assert rig.state.pin_length == 2
    rig.flow.submit_pin()
    assert rig.auth.calls == [] and "4 to 12 digits" in rig.state.message.en and rig.state.error
    rig.flow.clear()
    state = rig.type_pin("1111")
    assert rig.auth.calls == [(BADGE, "1111")] and state.pin_length == 0
    assert state.attempts_left == 4 and "4 attempt(s) left" in state.message.en
    assert "还可尝试 4 次" in state.message.zh
    assert all("1111" not in repr(s) for s in rig.seen)  # the PIN is in no snapshot
    for _ in range(20):
        rig.flow.key("9")
    assert rig.state.pin_length == 12  # at most 12 digits


def test_five_wrong_pins_lock_with_a_countdown_that_releases(rig):
    rig.flow.idle_s = 1000  # staff wait it out at the kiosk
    rig.flow.begin(BADGE)
    for _ in range(4):
        rig.type_pin("1111")
    state = rig.type_pin("1111")
    assert state.locked_s == 300 and "5:00" in state.message.en and "5:00" in state.message.zh
    rig.flow.key("2")
    rig.flow.submit_pin()
    assert rig.state.pin_length == 0 and len(rig.auth.calls) == 5  # keys ignored while locked
    rig.clock.t += 299
    rig.flow.tick()
    assert rig.state.locked_s == 1 and "0:01" in rig.state.message.en
    rig.clock.t += 1
    rig.flow.tick()
    assert rig.state.locked_s is None and not rig.state.error
    assert "Enter your staff PIN" in rig.state.message.en


def test_a_refusal_without_attempts_shows_the_services_own_words(rig):
    rig.auth.error = StaffAuthUnavailable("offline_no_cache", "staff.auth.offline_no_cache")
    rig.flow.begin(BADGE)
    state = rig.type_pin("246810")
    assert state.step is StaffStep.PIN and state.message == render(rig.auth.error)
    assert state.message.en.startswith("Store server unreachable: sign in once")


def test_a_kiosk_not_enrolled_says_so_and_checks_nothing(rig):
    rig.flow.authenticate = None
    rig.flow.begin(BADGE)
    assert rig.state.error and "not enrolled" in rig.state.message.en
    rig.type_pin("246810")
    assert rig.state.step is StaffStep.PIN and rig.auth.calls == []


def test_a_lock_until_a_manager_unlocks_says_so_without_a_countdown(rig):
    rig.auth.error = StaffLocked(None)
    rig.flow.begin(BADGE)
    state = rig.type_pin("246810")
    assert state.step is StaffStep.PIN and state.error and state.locked_s is None
    assert "manager unlocks you" in state.message.en and "店长" in state.message.zh
    rig.clock.t += 10
    rig.flow.tick()  # nothing to count down
    assert rig.state.locked_s is None


def test_a_lockout_does_not_hold_the_kiosk_past_the_idle_timeout(rig):
    rig.auth.error = StaffLocked(300)
    rig.flow.begin(BADGE)
    rig.type_pin("246810")
    rig.clock.t += 50
    rig.flow.tick()
    assert rig.state.locked_s == 250 and "4:10" in rig.state.message.en
    rig.clock.t += 10
    rig.flow.tick()
    assert rig.state.step is StaffStep.IDLE and rig.exits == 1


def test_idle_on_the_pin_pad_returns_to_attract(rig):
    rig.flow.begin(BADGE)
    rig.clock.t += 30
    rig.flow.tick()
    assert rig.state.idle_left_s == pytest.approx(30)
    rig.clock.t += 30
    rig.flow.tick()
    assert rig.state.step is StaffStep.IDLE and rig.exits == 1


def test_leaving_while_the_pin_is_checked_releases_the_kiosk(rig):
    rig.auth.gate = threading.Event()
    rig.flow.begin(BADGE)
    for digit in "246810":
        rig.flow.key(digit)
    rig.flow.submit_pin()
    assert rig.state.busy
    rig.flow._leave()  # as the idle timeout or an exit would
    rig.auth.gate.set()
    rig.join()
    assert rig.kiosk.lock.try_hold("test"), "the restock still holds the kiosk"
    rig.kiosk.lock.release()
    assert rig.state.step is StaffStep.IDLE and rig.service.unfinished() == []


def test_a_busy_kiosk_refuses_the_restock_and_stays_on_the_pin_pad(rig):
    assert rig.kiosk.lock.try_hold("restock")
    try:
        state = rig.sign_in()
    finally:
        rig.kiosk.lock.release()
    assert (
        state.step is StaffStep.PIN
        and state.error
        and "member transaction is running" in state.message.en
    )


# ---- restock ------------------------------------------------------------------------------------


def test_sign_in_shows_the_grid_with_stock_names_and_needs_check(rig):
    flag(rig.kiosk, 2)
    state = rig.sign_in()
    assert state.step is StaffStep.RESTOCK and state.staff_name == WANG.name
    tiles = {c.number: c for c in state.compartments}
    assert [c.number for c in state.compartments] == [1, 2, 3, 4, 5, 6]
    assert tiles[1].sku == "GIFT-MUG" and tiles[1].count == 3 and tiles[1].name.en == "Thermal mug"
    assert tiles[2].needs_check and not tiles[1].needs_check
    assert tiles[4].sku is None and tiles[4].name is None  # not in this catalog
    assert not rig.kiosk.lock.try_hold("member")  # the restock holds the kiosk


def test_open_count_refused_until_shut_then_accepted_and_finish_prints_the_slip(rig):
    rig.sign_in()
    rig.flow.enter_count("5")
    assert "Pick a compartment first" in rig.state.message.en
    rig.flow.select(1)
    rig.flow.open_selected()
    rig.until(lambda: rig.state.door is DoorPhase.OPEN, "the door open")
    assert rig.state.opened == 1 and rig.kiosk.sim.is_open(1)
    rig.flow.enter_count("10")
    state = rig.settle()
    assert state.error and "once the door is shut" in state.message.en
    rig.flow.enter_count("ten")
    assert "whole number" in rig.state.message.en
    rig.kiosk.sim.close_door(1)
    rig.until(lambda: rig.state.door is DoorPhase.CLOSED, "the door shut")
    assert "shut" in rig.state.message.en
    rig.flow.enter_count("10")
    state = rig.settle()
    assert not state.error and "3 → 10" in state.message.en
    tile = next(c for c in state.compartments if c.number == 1)
    assert tile.count == 10 and tile.counted
    rig.flow.finish()
    state = rig.settle()
    assert state.step is StaffStep.DONE and state.summary.slip_printed
    assert "Restock slip printed" in state.message.en
    printed = rig.kiosk.printer.wait_for_receipts(1)
    assert "S0001" in printed[0].text
    assert rig.kiosk.lock.try_hold("member")  # released
    rig.kiosk.lock.release()
    rig.flow.exit()
    assert rig.state.step is StaffStep.IDLE and rig.exits == 1


def test_a_count_clears_needs_check_and_says_so(rig):
    flag(rig.kiosk, 2)
    rig.sign_in()
    rig.flow.select(2)
    rig.flow.open_selected()
    rig.until(lambda: rig.state.door is DoorPhase.OPEN, "the door open")
    rig.kiosk.sim.close_door(2)
    rig.until(lambda: rig.state.door is DoorPhase.CLOSED, "the door shut")
    rig.flow.enter_count("4")
    state = rig.settle()
    assert "needs-check cleared" in state.message.en and 2 not in rig.kiosk.flags.flagged()
    assert not next(c for c in state.compartments if c.number == 2).needs_check


def test_an_item_less_compartment_takes_only_zero(rig):
    rig.sign_in()
    rig.flow.select(4)
    rig.flow.enter_count("3")
    assert "only 0" in rig.state.message.en and not rig.state.busy


def test_exit_with_a_door_open_is_refused_then_finishes_and_leaves_once_shut(rig):
    rig.sign_in()
    rig.flow.select(3)
    rig.flow.open_selected()
    rig.until(lambda: rig.state.door is DoorPhase.OPEN, "the door open")
    rig.flow.exit()
    state = rig.settle()
    assert state.step is StaffStep.RESTOCK and "Close compartment 3" in state.message.en
    assert rig.exits == 0
    rig.kiosk.sim.close_door(3)
    rig.until(lambda: rig.state.door is DoorPhase.CLOSED, "the door shut")
    rig.flow.exit()
    rig.until(lambda: rig.exits == 1, "the flow left")
    assert rig.state.step is StaffStep.IDLE
    assert rig.kiosk.lock.try_hold("member")
    rig.kiosk.lock.release()


def test_reprint_after_paper_out_and_back(rig):
    rig.sign_in()
    rig.kiosk.printer.set_paper(PaperState.OUT)
    assert not rig.kiosk.receipts.print_or_queue("old:receipt", slip())
    rig.flow.reprint()
    state = rig.settle()
    assert state.error and state.queued == 1 and "1 still waiting" in state.message.en
    rig.kiosk.printer.set_paper(PaperState.OK)
    rig.flow.reprint()
    state = rig.settle()
    assert not state.error and state.queued == 0 and "1 receipt(s) reprinted" in state.message.en
    assert len(rig.kiosk.printer.wait_for_receipts(1)) == 1


def test_a_slip_that_cannot_print_is_queued_and_reprinted_from_the_summary(rig):
    rig.sign_in()
    rig.flow.select(1)
    rig.flow.open_selected()
    rig.until(lambda: rig.state.door is DoorPhase.OPEN, "the door open")
    rig.kiosk.sim.close_door(1)
    rig.until(lambda: rig.state.door is DoorPhase.CLOSED, "the door shut")
    rig.flow.enter_count("2")
    rig.settle()
    rig.kiosk.printer.set_paper(PaperState.OUT)
    rig.flow.finish()
    state = rig.settle()
    assert state.step is StaffStep.DONE and state.summary.slip_queued and state.queued == 1
    assert "load paper" in state.message.en and state.error
    rig.kiosk.printer.set_paper(PaperState.OK)
    rig.flow.reprint()  # the session has ended: straight through the receipt queue
    assert rig.settle().queued == 0
    assert "S0001" in rig.kiosk.printer.wait_for_receipts(1)[0].text


def test_the_restock_idle_countdown_pauses_while_a_door_is_open(rig):
    rig.sign_in()
    rig.clock.t += 20
    rig.flow.tick()
    assert rig.state.idle_left_s == pytest.approx(rig.service.idle_timeout_s - 20)
    rig.flow.select(1)
    rig.flow.open_selected()
    rig.until(lambda: rig.state.door is DoorPhase.OPEN, "the door open")
    rig.clock.t += 500  # filling the compartment takes long
    rig.flow.tick()
    assert rig.state.idle_left_s is None and rig.state.step is StaffStep.RESTOCK
    rig.kiosk.sim.close_door(1)
    rig.until(lambda: rig.state.door is DoorPhase.CLOSED, "the door shut")
    rig.flow.tick()
    assert rig.state.idle_left_s == pytest.approx(rig.service.idle_timeout_s)


def test_an_idle_restock_ends_by_itself_with_its_summary(rig):
    rig.sign_in()
    rig.clock.t += rig.service.idle_timeout_s
    rig.flow.tick()
    state = rig.state
    assert state.step is StaffStep.DONE and state.summary.ended == "timeout"
    assert "ended after a while" in state.message.en
    rig.clock.t += 60
    rig.flow.tick()
    assert state.step is StaffStep.DONE and rig.state.step is StaffStep.IDLE and rig.exits == 1


def test_taps_while_busy_are_ignored(rig):
    rig.auth.gate = threading.Event()
    rig.flow.begin(BADGE)
    for digit in "246810":
        rig.flow.key(digit)
    rig.flow.submit_pin()
    rig.flow.submit_pin()  # the Pi's double report
    rig.flow.key("1")
    rig.auth.gate.set()
    rig.settle()
    assert len(rig.auth.calls) == 1 and rig.state.step is StaffStep.RESTOCK


def test_the_same_badge_again_keeps_the_flow_a_new_one_starts_over(rig):
    rig.flow.begin(BADGE)
    rig.flow.key("1")
    rig.flow.begin(BADGE)  # a re-render with the same routed code
    assert rig.state.pin_length == 1
    rig.flow.begin(BADGE + "2")
    assert rig.state.pin_length == 0 and rig.state.step is StaffStep.PIN


def test_every_text_the_flow_says_is_in_the_catalog():
    flow_and_views = ("kiosk/services/staff_session.py", "kiosk/services/staff_views.py")
    source = "".join(Path(p).read_text(encoding="utf-8") for p in flow_and_views)
    keys = set(re.findall(r'"((?:staff|common)\.[a-z_]+)"', source))
    assert len(keys) > 20 and keys <= set(load_catalog())
