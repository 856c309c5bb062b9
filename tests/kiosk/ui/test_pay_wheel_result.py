"""Payment, wheel and result screens in the real app, offscreen, against the real store server.

Steps that belong to other screens (member, catalog, confirm) are driven through the session
directly; these screens are driven by taps and read through their widgets and screenshots.
"""

from __future__ import annotations

import dataclasses
import re
import time

import pytest
from PIL import Image
from pyzbar.pyzbar import ZBarSymbol, decode

from kiosk.domain.receipts import PrizeKind
from kiosk.ports import PaperState
from kiosk.services.session import Screen
from kiosk.services.txn_steps import Outcome
from storeserver import members

from .harness import UiDriver, drive

SCREENS = {
    Screen.ATTRACT: "attract:AttractScreen",
    Screen.PAYMENT: "payment:PaymentScreen",
    Screen.WHEEL: "wheel:WheelScreen",
    Screen.RESULT: "result:ResultScreen",
}


def code_for(server, member_id: str) -> str:
    with server.store.db.transaction() as conn:
        issued = members.issue_code(server.store.ledger, conn, server.store.signing_key, member_id)
    return issued["code"]


def sign_in(ui: UiDriver, core, server, member_id: str) -> None:
    """Scan a member code once the catalog and the wheel have synced (the member screen is
    not in this app: the session's state says where we are)."""
    ui.wait(lambda: core.catalog is not None and "LUCKY" in core.wheels, what="first sync")
    ui.scan(code_for(server, member_id))
    ui.wait(lambda: ui.app.session.state.screen is Screen.MEMBER, what="member signed in")


def wait_shown(ui: UiDriver, name: str) -> None:
    """The screen is current, its switch over and laid out (a tap before that is dropped or
    lands where the button is not yet)."""
    ui.wait_shown(name)


def redeem(ui: UiDriver, sku: str) -> None:
    session = ui.app.session
    session.show_catalog()
    session.choose(sku)
    assert session.state.screen is Screen.CONFIRM, session.state.error
    session.confirm()  # the transaction runs on a worker thread, as in the app
    ui.pump(0.05)


def settled(ui: UiDriver) -> bool:
    """The transaction is over and the screen shows it (the session's state may be ahead
    of the widgets by one posted frame)."""
    shown = ui.app.last_state
    return not shown.busy and shown is ui.app.session.state


def decode_qr(path) -> list[str]:
    gray = Image.open(path).convert("L")
    return [s.data.decode() for s in decode(gray, symbols=[ZBarSymbol.QRCODE])]


def seconds(countdown_text: str) -> int:
    minutes, secs = re.search(r"(\d+):(\d\d)", countdown_text).groups()
    return int(minutes) * 60 + int(secs)


@pytest.fixture
def fast_jam(ui_core):
    """A jammed door is reported after 0.5 s, not the configured 5 s (the config's floor
    is 1 s; the locker reads the timeout at each open)."""
    locker = ui_core.locker
    locker._cfg = dataclasses.replace(locker._cfg, door_open_timeout_s=0.5)
    return ui_core


# ---- payment -> result ---------------------------------------------------------------------------


def test_points_and_cash_shows_a_scannable_qr_then_pays_and_opens_the_door(
    ui_core, ui_server, tmp_path
):
    with drive(ui_core, screens=SCREENS) as ui:
        tr = ui.app.tr
        sign_in(ui, ui_core, ui_server, "M0002")
        redeem(ui, "GIFT-EARBUDS")
        wait_shown(ui, "payment")
        ui.wait(lambda: ui.widget("qr").opacity == 1, what="the QR code")
        url = ui.app.session.state.progress.pay_url
        qr = ui.widget("qr")
        assert qr.width >= 260 and qr.height == qr.width
        assert decode_qr(ui.screenshot(tmp_path / "payment.png")) == [url]
        assert "¥49.00" in ui.text("amount")
        assert "2,000" in ui.text("points")
        first = ui.text("countdown")
        ui.pump(1.3)
        later = ui.text("countdown")
        assert 0 < seconds(later) < seconds(first) <= 240, (first, later)

        ui_server.simulate_paid(url.rsplit("/", 1)[1])
        wait_shown(ui, "result")
        ui.wait(lambda: settled(ui), what="the purchase to finish")
        result = ui.app.session.state.result
        assert result.outcome is Outcome.DISPENSED and result.txn.compartment == 4
        assert ui.text("title") == tr("result.title_take_gift", n=4)
        ui.wait(lambda: ui.text("door") == tr("result.door_open", n=4), what="door open")
        assert ui.text("printing") == tr("result.receipt_printing")
        assert not ui.widget("done_button").disabled
        ui.screenshot(tmp_path / "result-open.png")

        ui_core.locker.sim.close_door(4)  # the member takes the earbuds and shuts the door
        ui.wait(lambda: ui.text("door") == tr("result.door_closed", n=4), 2.0, "door closed")
        assert ui_server.balance("M0002") == 700
        ui.tap("done_button")
        assert ui.app.session.state.screen is Screen.MEMBER


def test_cancelling_the_payment_returns_the_points(ui_core, ui_server, tmp_path):
    with drive(ui_core, screens=SCREENS) as ui:
        tr = ui.app.tr
        sign_in(ui, ui_core, ui_server, "M0002")
        redeem(ui, "GIFT-EARBUDS")
        wait_shown(ui, "payment")
        ui.wait(lambda: not ui.widget("cancel_button").disabled, what="cancel enabled")
        assert ui_server.balance("M0002") == 700  # held
        payment = ui.screen
        ui.tap("cancel_button", twice=True)
        # the void may already have moved us on: read the payment screen itself
        assert payment.ids.cancel_button.disabled
        assert payment.ids.status.text == tr("payment.cancelling")
        wait_shown(ui, "result")
        ui.wait(lambda: settled(ui), what="the void")
        assert ui.app.session.state.result.outcome is Outcome.VOIDED
        assert ui.text("title") == tr("result.title_voided")
        assert tr("result.points_returned", points="2,000") in ui.text("detail")
        assert ui.text("printing") == tr("result.voucher_printing")
        assert ui.text("door") == ""
        assert ui_server.balance("M0002") == 2700
        ui.screenshot(tmp_path / "result-voided.png")


# ---- wheel ---------------------------------------------------------------------------------------


def test_wheel_spins_once_on_a_double_tap_and_lands_on_the_servers_segment(
    ui_core, ui_server, tmp_path
):
    from kiosk.screens.wheel import segment_at

    with drive(ui_core, screens=SCREENS) as ui:
        tr = ui.app.tr
        sign_in(ui, ui_core, ui_server, "M0004")
        ui.app.session.show_wheel()
        wait_shown(ui, "wheel")
        # the synced wheel first (cost and limit), then the member's own spins left today
        ui.wait(lambda: ui.text("spins_left") == tr("wheel.spins_left", n=3), what="spins left")
        info = ui.app.session.state.wheel
        wheel = ui.widget("wheel")
        assert wheel.labels == [s.label_zh for s in info.segments]

        ui.tap("odds_button")
        panel = ui.screen.odds_panel
        assert panel.parent is not None  # open
        for s in info.segments:
            assert f"{s.label_zh}：{100 * s.odds:.1f}%" in panel.ids.table.text
        assert "100" in panel.ids.terms.text and "3" in panel.ids.terms.text
        assert info.rules_zh in panel.ids.rules.text
        ui.screenshot(tmp_path / "wheel-odds.png")
        ui.tap(panel.ids.close_button)
        ui.pump(0.3)
        assert panel.parent is None

        before = ui_server.balance("M0004")
        ui.tap("spin_button", twice=True)  # the Pi may report one touch twice
        assert ui.widget("spin_button").disabled
        angles = set()
        deadline = time.monotonic() + 15
        while wheel.turning or ui.app.session.state.busy:
            angles.add(round(wheel.angle, 1))
            assert time.monotonic() < deadline, "the wheel never stopped"
            ui.pump(0.05)
        assert len(angles) > 20  # it animated, frame by frame
        ui.wait(lambda: ui.text("result") != "", 2.0, "the prize text")
        result = ui.app.session.state.result
        prize = result.ctx.prize
        assert segment_at(wheel.angle, len(wheel.labels)) == prize.segment_idx
        assert prize.label_zh in ui.text("result")
        if prize.kind is PrizeKind.GIFT:
            assert tr("wheel.door_open", n=result.txn.compartment) in ui.text("result")
        gained = prize.points if prize.kind is PrizeKind.POINTS else 0
        assert ui_server.balance("M0004") == before - 100 + gained  # one spin, not two
        assert len(ui_server.redemptions()) == 1
        assert not ui.widget("spin_button").disabled
        assert ui.text("spins_left") == tr("wheel.spins_left", n=2)
        ui.screenshot(tmp_path / "wheel-landed.png")


def test_wheel_lands_on_each_segment_it_is_told(ui_core, tmp_path):
    """The angle says the segment, and so do the pixels under the pointer."""
    from kiosk.screens.wheel import PALETTE, segment_at

    with drive(ui_core, screens=SCREENS) as ui:
        ui.wait(lambda: "LUCKY" in ui_core.wheels, what="wheel info")
        ui.app.render(dataclasses.replace(ui.app.session.state, screen=Screen.WHEEL,
                                          wheel=ui_core.wheels["LUCKY"]))  # fmt: skip
        wheel = ui.widget("wheel")
        wheel.speed = 7200.0  # ten times the kiosk's speed: the same path, faster
        landed: list[int] = []
        for idx in (5, 0, 3, 2, 4, 1):
            wheel.spin()
            ui.pump(0.05)
            wheel.land(idx, lambda i=idx: landed.append(i))
            ui.wait(lambda i=idx: landed[-1:] == [i], 3.0, f"landing on {idx}")
            assert segment_at(wheel.angle, 6) == idx
            shot = Image.open(ui.screenshot(tmp_path / f"landed-{idx}.png")).convert("RGB")
            radius = min(wheel.size) / 2 - 14
            x, y = wheel.to_window(wheel.center_x, wheel.center_y + 0.88 * radius)
            under_pointer = shot.getpixel((int(x), int(shot.height - y)))
            expected = tuple(round(255 * c) for c in PALETTE[idx][:3])
            assert all(abs(a - b) <= 3 for a, b in zip(under_pointer, expected, strict=True)), (
                idx, under_pointer, expected)  # fmt: skip


def test_a_gift_prize_lands_and_says_which_compartment_before_the_door_is_opened(ui_core):
    """The draw comes in the progress (the transaction is still running: its door waits for
    the member), so the wheel lands and names the compartment then, not after the door."""
    from kiosk.domain.transaction import TxnState
    from kiosk.domain.wheel import Prize
    from kiosk.screens.wheel import segment_at
    from kiosk.services.txn_steps import Progress

    with drive(ui_core, screens=SCREENS) as ui:
        tr = ui.app.tr
        ui.wait(lambda: "LUCKY" in ui_core.wheels, what="wheel info")
        idle = dataclasses.replace(ui.app.session.state, screen=Screen.WHEEL,
                                   wheel=ui_core.wheels["LUCKY"])  # fmt: skip
        ui.app.render(idle)
        wheel = ui.widget("wheel")
        wheel.speed = 7200.0  # the same path, faster
        busy = dataclasses.replace(idle, busy=True)
        ui.app.render(busy)  # tapped: spinning, nothing drawn yet
        ui.pump(0.1)
        assert wheel.turning and ui.text("result") == tr("wheel.spinning")
        mug = Prize("LUCKY", 5, PrizeKind.GIFT, "保温杯", "Thermal mug", 0, "2026-11-28", "c")
        door = Progress("t-1", TxnState.DOOR_OPENING, compartment=1, prize=mug)
        ui.app.render(dataclasses.replace(busy, progress=door))
        ui.wait(lambda: not wheel.turning, 5.0, "the landing")
        ui.pump(0.1)
        assert segment_at(wheel.angle, 6) == 5
        assert ui.text("result") == tr("wheel.won", label="保温杯") + "\n" + tr(
            "wheel.door_open", n=1
        )
        assert ui.widget("spin_button").disabled  # still busy: no second spin


# ---- failures --------------------------------------------------------------------------------------


def test_a_jammed_door_returns_the_points_and_prints_a_claim_voucher(fast_jam, ui_server, tmp_path):
    core = fast_jam
    core.locker.sim.jam(1)
    with drive(core, screens=SCREENS) as ui:
        tr = ui.app.tr
        sign_in(ui, core, ui_server, "M0002")
        redeem(ui, "GIFT-MUG")
        wait_shown(ui, "result")
        ui.wait(
            lambda: ui.text("detail") == tr("result.state.DOOR_OPENING", n=1),
            what="progress while the door opens",
        )
        assert ui.text("title") == tr("result.title_busy")
        assert ui.widget("done_button").disabled
        ui.wait(lambda: settled(ui), what="the void")
        assert ui.app.session.state.result.outcome is Outcome.NEEDS_CHECK
        assert ui.text("title") == tr("result.title_needs_check")
        detail = ui.text("detail")
        assert tr("result.points_returned", points="800") in detail
        assert "请凭凭条联系店员" in detail  # the engine's words: points back, see staff
        assert ui.text("printing") == tr("result.voucher_printing")
        assert ui.text("door") == tr("result.door_check", n=1)
        assert ui_server.balance("M0002") == 2700
        assert len(core.paper.wait_for_receipts(1)) == 1
        ui.screenshot(tmp_path / "result-jammed.png")


def test_paper_out_says_the_receipt_prints_when_paper_is_loaded(ui_core, ui_server, tmp_path):
    ui_core.paper.set_paper(PaperState.OUT)
    with drive(ui_core, screens=SCREENS) as ui:
        tr = ui.app.tr
        sign_in(ui, ui_core, ui_server, "M0002")
        redeem(ui, "GIFT-MUG")
        wait_shown(ui, "result")
        ui.wait(lambda: settled(ui), what="the redemption")
        result = ui.app.session.state.result
        assert result.outcome is Outcome.DISPENSED and result.queued
        assert ui.text("printing") == tr("result.receipt_queued")
        tr.toggle()  # English: every text follows
        ui.pump(0.1)
        assert ui.text("printing") == "Out of paper: your receipt will print when paper is loaded"
        assert ui.text("title") == "Open compartment 1 and take your gift"
        assert ui.text("done_button") == "Done"
        ui.screenshot(tmp_path / "result-paper-out.png")


def test_spins_left_shows_when_the_server_sends_it_and_none_left_disables_spin(ui_core):
    with drive(ui_core, screens=SCREENS) as ui:
        tr = ui.app.tr
        ui.wait(lambda: "LUCKY" in ui_core.wheels, what="wheel info")
        info = ui_core.wheels["LUCKY"]
        state = dataclasses.replace(ui.app.session.state, screen=Screen.WHEEL)
        ui.app.render(dataclasses.replace(state, wheel=dataclasses.replace(info, spins_left=2)))
        assert ui.text("spins_left") == tr("wheel.spins_left", n=2)
        assert not ui.widget("spin_button").disabled
        ui.app.render(dataclasses.replace(state, wheel=dataclasses.replace(info, spins_left=0)))
        assert ui.text("spins_left") == tr("wheel.spins_left", n=0)
        assert ui.widget("spin_button").disabled
        ui.app.render(dataclasses.replace(state, wheel=None))
        assert ui.text("spins_left") == tr("wheel.unavailable")
        assert ui.widget("spin_button").disabled and ui.widget("odds_button").disabled
