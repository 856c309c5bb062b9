"""The demo's screenshot tour (``run_tour``): every screen and flow, driven through the real
app by ``kiosk.screens.driver.UiDriver`` (which imports Kivy: set the video driver first,
as ``kiosk.demo.main`` does). No Kivy here."""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.demo.rig import JAM_DOOR
from kiosk.screens.driver import UiDriver, WaitRecord  # first: it prepares Kivy's environment

# isort: split
from kiosk.app import post
from kiosk.errors import KioskError
from kiosk.services.staff_session import DoorPhase, StaffStep
from kiosk.services.txn_steps import Outcome
from kiosk.wiring import build_ui

if TYPE_CHECKING:
    from kiosk.demo.rig import DemoRig

log = logging.getLogger(__name__)


def run_tour(rig: DemoRig, out: Path, slow_factor: float = 1.0) -> int:
    """The screenshot tour; 0 if every step reached its screen (and passed its check).
    ``slow_factor`` (``kiosk.demo.slowness``) multiplies every wait bound of the tour."""
    with UiDriver(build_ui(rig.core, post=post), slow_factor=slow_factor) as ui:
        return Tour(rig, ui, out).run()


# ---- the tour ----------------------------------------------------------------------------------


def closest(record: WaitRecord | None) -> str:
    """``12.1 of 30 s (40%) the wheel to land``: how near a step came to failing."""
    if record is None:
        return "-"
    return (f"{record.seconds:.1f} of {record.bound_s:g} s ({record.share:.0%}) "
            f"{record.what}")  # fmt: skip


class TourFailed(KioskError, AssertionError):
    """A step did not reach its screen or its check did not hold. Also an AssertionError, as
    the UI driver's failed waits are, so a step treats both as a failed check."""


def expect(condition: object, what: str) -> None:
    if not condition:
        raise TourFailed(what)


@dataclass
class StepResult:
    name: str
    expected: str
    reached: str
    note: str
    seconds: float
    closest: WaitRecord | None = None  # the step's wait that came nearest its bound

    @property
    def ok(self) -> bool:
        return not self.note and self.reached == self.expected


class Tour:
    """Every screen and flow, failures included, as taps on the real app against the demo
    store: one PNG per step (``NN-name.png``) and the receipts in ``out/receipts``. Each scene
    starts on the attract screen; a failed step ends its scene, and the next scene starts on
    the attract screen again."""

    def __init__(self, rig: DemoRig, ui: UiDriver, out: Path) -> None:
        self.rig, self.server, self.ui, self.out = rig, rig.server, ui, out
        self.session = ui.app.session
        self.results: list[StepResult] = []

    def run(self) -> int:
        self.out.mkdir(parents=True, exist_ok=True)
        for old in self.out.glob("[0-9][0-9]-*.png"):
            old.unlink()
        started, core = time.monotonic(), self.rig.core
        self.ui.wait(lambda: core.catalog is not None and core.config.wheel.id in core.wheels, 20,
                     "the first sync (catalog and wheel)")  # fmt: skip
        for scene in (self.welcome, self.redeem, self.pay, self.wheel, self.paper_out, self.jam,
                      self.offline, self.staff, self.technician, self.maintenance):  # fmt: skip
            try:
                scene()
            except TourFailed:
                pass  # recorded by step(): on to the next scene
            except Exception as exc:  # a move between steps: recorded as a failed step
                log.exception("tour scene %s", scene.__name__)
                note = f"{type(exc).__name__}: {exc}"
                self._record(f"{scene.__name__}-moves", "-", note, time.monotonic())
            self.recover()
        receipts = self.copy_receipts()
        ok = sum(r.ok for r in self.results)
        print(f"slow factor {self.ui.slow_factor:g} (KIOSK_SLOW_FACTOR or --slow-factor): "
              "every wait bound is that many times its normal length")  # fmt: skip
        print(self.table())
        print(f"\n{len(self.results)} steps, {ok} ok, {len(receipts)} receipt files, "
              f"{time.monotonic() - started:.1f} s; screenshots and receipts in {self.out}",
              flush=True)  # fmt: skip
        return 0 if ok == len(self.results) else 1

    def step(self, name: str, expected: str, action: Callable[[], object]) -> None:
        """Do ``action``, wait for the ``expected`` screen, take the screenshot NN-name.png."""
        began, note = time.monotonic(), ""
        self.ui.closest = None
        try:
            action()
            self.ui.wait_shown(expected, timeout_s=10)
        except AssertionError as exc:
            note = str(exc) or type(exc).__name__
        except Exception as exc:  # the tour reports, it does not crash
            log.exception("tour step %s", name)
            note = f"{type(exc).__name__}: {exc}"
        if not self._record(name, expected, note, began).ok:
            raise TourFailed(note)

    def _record(self, name: str, expected: str, note: str, began: float) -> StepResult:
        result = StepResult(name, expected, self.ui.current, note, time.monotonic() - began,
                            self.ui.closest)  # fmt: skip
        self.results.append(result)
        self.ui.screenshot(self.out / f"{len(self.results):02d}-{name}.png")
        return result

    def recover(self) -> None:
        """Back to the attract screen: doors shut and working, payment cancelled, staff out."""
        ui, session = self.ui, self.session
        self.rig.close_doors()
        self.rig.clear_jam()
        session.cancel_payment()
        try:
            ui.wait(lambda: not session.state.busy, 30, "the transaction to end")
            flow = getattr(ui.screen, "flow", None)  # staff and diagnostics have their own
            leave = getattr(flow, "exit", None) or getattr(flow, "back", None)
            if ui.current in ("staff", "diagnostics") and leave is not None:
                leave()
            session.logout()
            ui.wait_shown("attract")
        except AssertionError as exc:
            log.error("tour: could not get back to the attract screen: %s", exc)

    def copy_receipts(self) -> list[Path]:
        folder = self.out / "receipts"
        folder.mkdir(exist_ok=True)
        paths = [p for r in self.rig.paper.receipts for p in (r.text_path, r.png_path)]
        return [Path(shutil.copy2(p, folder / p.name)) for p in paths if p.exists()]

    def table(self) -> str:
        """One line per step: its time, and its wait that came nearest its bound."""
        rows = [("step", "expected screen", "reached", "ok", "s", "closest wait: s of bound")]
        rows += [(f"{n:02d}-{r.name}", r.expected, r.reached, "ok" if r.ok else "FAIL",
                  f"{r.seconds:.1f}", closest(r.closest)) for n, r in enumerate(self.results, 1)]  # fmt: skip
        widths = [max(len(row[i]) for row in rows) for i in range(6)]
        notes = [""] + [r.note[:80] for r in self.results]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
                         + "  " + note for row, note in zip(rows, notes, strict=True))  # fmt: skip

    # ---- moves -----------------------------------------------------------------------------
    def sign_in(self, member_id: str) -> None:
        self.rig.present(self.server.member_code(member_id))  # the camera sees the phone
        self.ui.wait_shown("member", 15)

    def choose(self, sku: str, member_id: str | None = None) -> None:
        """(Sign in,) catalog, the item: on the confirm screen."""
        ui = self.ui
        if member_id is not None:
            self.sign_in(member_id)
        ui.tap("catalog_button")
        ui.wait_shown("catalog")
        ui.tap(ui.screen.item_button(sku))
        ui.wait_shown("confirm")

    def confirm(self, *wanted: Outcome, screen: str = "result"):
        """Tap confirm; with ``wanted``, wait for the result and check its outcome."""
        ui = self.ui
        ui.tap("confirm_button")
        ui.wait_screen(screen, 15)
        return self.outcome(*wanted) if wanted else None

    def outcome(self, *wanted: Outcome):
        ui, session = self.ui, self.session
        ui.wait(lambda: ui.settled() and session.state.result is not None, 20, "the result")
        result = session.state.result
        expect(result.outcome in wanted, f"outcome {result.outcome.name}, not "
               + "/".join(w.name for w in wanted))  # fmt: skip
        return result

    def done(self) -> None:
        """The member takes the gift and shuts the door; done: the member screen again."""
        self.rig.close_doors()
        self.ui.tap("done_button")
        self.ui.wait_shown("member")

    # ---- the scenes ------------------------------------------------------------------------
    def welcome(self) -> None:
        ui = self.ui
        self.step("attract", "attract", lambda: expect(ui.text("hint"), "the hint"))

        def english() -> None:
            before = ui.text("hint")
            ui.tap("language")
            expect(ui.app.tr.language == "en" and ui.text("hint") != before, "English texts")

        self.step("attract-english", "attract", english)

    def redeem(self) -> None:
        ui = self.ui
        self.step("member-english", "member", lambda: self.sign_in("M0002"))
        self.step(
            "member",
            "member",
            lambda: (ui.tap("language"), expect(ui.app.tr.language == "zh", "back to Chinese")),
        )
        self.step("catalog", "catalog", lambda: ui.tap("catalog_button"))
        self.step("confirm", "confirm", lambda: ui.tap(ui.screen.item_button("GIFT-MUG")))
        self.step("redeemed", "result", lambda: self.confirm(Outcome.DISPENSED))
        self.done()
        ui.tap("logout_button")

    def pay(self) -> None:
        ui = self.ui

        def to_payment() -> None:
            self.choose("GIFT-EARBUDS", "M0004")
            self.confirm(screen="payment")
            ui.wait(lambda: ui.widget("qr").opacity == 1, 15, "the payment QR code")

        self.step("payment", "payment", to_payment)
        self.step("paid", "result", lambda: (  # the member's phone pays
            self.server.pay(self.session.state.progress.pay_url),
            self.outcome(Outcome.DISPENSED)))  # fmt: skip
        self.done()
        # nobody pays this one: the store server lets the payment expire after 3 s (its
        # payments' expiry, not the kiosk's own timeout), the kiosk sees it and voids
        with self.server.payments_expiring_after(math.ceil(3 * self.ui.slow_factor)):
            self.choose("GIFT-EARBUDS")

            def expired() -> None:
                reason = self.confirm(Outcome.VOIDED, screen="payment").txn.void_reason
                expect(reason == "payment_expired", f"voided for {reason}, not the expiry")

            self.step("payment-expired", "result", expired)

    def wheel(self) -> None:
        ui = self.ui
        self.step("wheel", "wheel", lambda: (self.sign_in("M0004"), ui.tap("wheel_button")))

        def spin() -> None:
            ui.tap("spin_button")
            wheel = ui.widget("wheel")
            ui.wait(lambda: ui.settled() and not wheel.turning and ui.text("result"), 30,
                    "the wheel to land")  # fmt: skip
            self.outcome(Outcome.ISSUED, Outcome.DISPENSED)

        self.step("wheel-landed", "wheel", spin)

    def paper_out(self) -> None:
        self.rig.set_paper(False)
        try:
            self.choose("GIFT-TOTE", "M0004")
            self.step("paper-out", "result", lambda: expect(
                self.confirm(Outcome.DISPENSED).queued, "the receipt queued"))  # fmt: skip
        finally:
            self.rig.set_paper(True)

    def jam(self) -> None:
        self.rig.arm_jam()
        self.choose("GIFT-MUG", "M0004")
        self.step("door-jammed", "result", lambda: expect(
            self.confirm(Outcome.NEEDS_CHECK).printed, "the claim voucher printed"))  # fmt: skip

    def offline(self) -> None:
        ui, online = self.ui, self.rig.core.connectivity.online
        self.server.relay.cut()
        try:
            ui.wait(lambda: not online(), 15, "the kiosk to notice")
            self.step("offline", "attract", lambda: ui.wait(
                lambda: ui.widget("offline").opacity == 1, 5, "the offline banner"))  # fmt: skip
            self.step("member-offline", "member", lambda: (self.sign_in("M0002"), expect(
                not self.session.state.member.online, "the cached member view")))  # fmt: skip
            self.choose("GIFT-TOTE")
            self.step("redeemed-offline", "result",
                      lambda: self.confirm(Outcome.DISPENSED_UNCONFIRMED))  # fmt: skip
        finally:
            self.server.relay.restore()
            ui.wait(online, 15, "the kiosk back online")

    def staff(self) -> None:
        ui, rig = self.ui, self.rig
        code, pin = self.server.staff_badge()
        self.step("staff-pin", "staff", lambda: rig.present(code))
        screen = ui.screen
        state = lambda: screen.shown  # noqa: E731  (what staff see: the flow moves a frame ahead)

        def sign_in() -> None:
            for n, digit in enumerate(pin):
                if n and pin[n - 1] == digit:
                    ui.pump(0.15)  # a repeated digit comes after the keypad's debounce
                ui.tap(f"key_{digit}")
            ui.tap("key_ok")
            ui.wait(lambda: state().step is StaffStep.RESTOCK, 15, "the compartment grid")
            ui.pump(0.1)  # the new tiles get their places in the next layout

        def restock() -> None:  # the jammed compartment: staff check it, refill, count 5
            ui.tap(ui.screen.compartment_button(JAM_DOOR))
            ui.tap("open_button")
            ui.wait(lambda: state().door is DoorPhase.OPEN, 10, "the door open")
            ui.tap("key_5")
            rig.close_doors()
            ui.wait(lambda: state().door is DoorPhase.CLOSED, 10, "the door shut")
            ui.tap("count_ok")
            ui.wait(lambda: any(c.number == JAM_DOOR and c.counted and not c.needs_check
                                for c in state().compartments), 10, "the count")  # fmt: skip
            ui.tap("reprint_button")  # the receipt queued while the paper was out
            ui.wait(lambda: not state().busy and not len(rig.core.receipts), 10, "reprints")

        self.step("staff-grid", "staff", sign_in)
        self.step("staff-restocked", "staff", restock)
        self.step("staff-slip", "staff", lambda: (ui.tap("finish_button"), ui.wait(
            lambda: state().step is StaffStep.DONE, 10, "the restock slip")))  # fmt: skip

    def technician(self) -> None:
        ui = self.ui

        def report() -> None:
            self.rig.present(self.server.technician_code())
            ui.wait_shown("diagnostics")
            state = lambda: ui.screen.flow.state  # noqa: E731
            ui.wait(lambda: state().report is not None and not state().busy, 15, "the report")

        self.step("diagnostics", "diagnostics", report)

    def maintenance(self) -> None:
        ui, rig = self.ui, self.rig
        monitor = ui.app.ui.maintenance
        rig.set_cover(True)  # the kiosk finds the printer unusable: out of service
        try:
            self.step("maintenance", "maintenance", monitor.check_now)
            expect(self.session.state.maintenance, "a reason to stop with the cover open")
        finally:
            rig.set_cover(False)
        self.step("maintenance-over", "attract", lambda: ui.screen.check_now())
