"""Staff, technician and maintenance screens in the real app, offscreen, against the real store
server on loopback with the simulated locker and the virtual printer."""

from __future__ import annotations

import datetime as dt
import time

from kiosk.domain.receipts import Bilingual, RestockLine, RestockSlip
from kiosk.ports import PaperState
from kiosk.services.session import Screen
from kiosk.services.staff_session import DoorPhase, StaffStep
from storeserver import codes, staff

from ..services.rig import KIOSK
from .harness import drive

SCREENS = {
    Screen.ATTRACT: "attract:AttractScreen",
    Screen.STAFF: "staff:StaffScreen",
    Screen.DIAGNOSTICS: "diagnostics:DiagnosticsScreen",
    Screen.MAINTENANCE: "maintenance:MaintenanceScreen",
}


def badge(server, staff_id: str = "S0001") -> str:
    with server.store.db.transaction() as conn:
        return staff.issue_badge(conn, server.store.clock, server.store.signing_key, staff_id, 30)[
            "code"
        ]


def technician(server, key=None) -> str:
    """A technician code for this kiosk: issued by the server, or signed with another ``key``."""
    if key is None:
        return server.technician_code(KIOSK)
    return codes.issue(key, codes.CodeKind.TECHNICIAN, KIOSK, int(time.time()))


def type_pin(ui, pin: str) -> None:
    """As staff type: a repeated digit comes after the keypad's short debounce."""
    for n, digit in enumerate(pin):
        if n and pin[n - 1] == digit:
            ui.pump(0.1)
        ui.tap(f"key_{digit}")
    ui.tap("key_ok")


def flow(ui):
    """The staff screen's flow (its state says more than the widgets in a failure)."""
    return ui.app.screens[Screen.STAFF].flow


def wait_shown_state(ui, predicate, what: str) -> None:
    """Wait until the staff screen has rendered a state for which ``predicate`` holds (the flow
    changes on a worker thread; the widgets follow on the next frame), then let it lay out."""
    screen = ui.app.screens[Screen.STAFF]
    ui.wait(lambda: predicate(screen.shown), what=f"{what}: {flow(ui).state}")
    ui.pump(0.1)


def wait_message(ui, part: str) -> None:
    ui.wait(
        lambda: part in ui.text("message"), what=f"message with {part!r}: {ui.text('message')!r}"
    )


def wait_text(ui, widget_id: str, expected: str) -> None:
    ui.wait(lambda: ui.text(widget_id) == expected, what=f"{widget_id} = {expected!r}")


def queued_slip() -> RestockSlip:
    at = dt.datetime.now(dt.UTC)
    line = RestockLine(5, Bilingual("晴雨伞", "Umbrella"), 1, 1)
    return RestockSlip(store_name_zh="测试门店", store_name_en="Test store", kiosk_id="kiosk-01",
                       printed_at=at, staff_id="S0002", lines=(line,))  # fmt: skip


def test_staff_signs_in_restocks_a_compartment_reprints_and_leaves(ui_core, ui_server, tmp_path):
    with drive(ui_core, screens=SCREENS) as ui:
        ui.wait(lambda: ui_core.catalog is not None, what="the catalog from the server")
        ui.scan(badge(ui_server))
        ui.wait_shown("staff")
        assert "请输入员工密码" in ui.text("message")
        type_pin(ui, "1111")
        wait_message(ui, "还可尝试 4 次")
        ui.screenshot(tmp_path / "staff-wrong-pin.png")
        ui.tap("key_2")
        wait_text(ui, "pin_display", "●")
        ui.tap("key_clear")
        wait_text(ui, "pin_display", "员工密码")
        ui.pump(0.1)  # key_2 again after the keypad's debounce
        type_pin(ui, "246810")
        wait_shown_state(ui, lambda s: s.step is StaffStep.RESTOCK, "the grid")
        screen = ui.screen
        tile = screen.compartment_button(1)
        assert "保温杯" in tile.text and "3" in tile.text
        ui.screenshot(tmp_path / "staff-grid.png")

        ui.tap(tile)
        ui.tap("open_button")
        wait_shown_state(ui, lambda s: s.door is DoorPhase.OPEN, "door 1 open")
        assert ui_core.locker.sim.is_open(1)
        ui.tap("key_1")
        ui.tap("key_0")
        assert ui.text("count_input") == "10"
        ui.tap("count_ok")
        wait_message(ui, "请先关好柜格 1 的门")
        ui_core.locker.sim.close_door(1)
        wait_shown_state(ui, lambda s: s.door is DoorPhase.CLOSED, "door 1 shut")
        ui.pump(0.6)  # past TapButton's debounce of the first tap
        ui.tap("count_ok")
        wait_message(ui, "3 → 10")
        assert "10" in screen.compartment_button(1).text
        ui.screenshot(tmp_path / "staff-counted.png")

        ui_core.paper.set_paper(PaperState.OUT)
        assert not ui_core.receipts.print_or_queue("earlier:receipt", queued_slip())
        ui.tap("reprint_button")
        wait_message(ui, "还有 1 张待打印")
        assert "(1)" in ui.text("reprint_button")
        ui_core.paper.set_paper(PaperState.OK)
        ui.pump(0.6)
        ui.tap("reprint_button")
        wait_message(ui, "已补打 1 张凭条")
        assert "S0002" in ui_core.paper.wait_for_receipts(1)[0].text

        ui.tap("finish_button")
        wait_shown_state(ui, lambda s: s.step is StaffStep.DONE, "the summary")
        wait_message(ui, "补货单已打印")
        slip = ui_core.paper.wait_for_receipts(2)[1]
        assert "S0001" in slip.text
        ui.screenshot(tmp_path / "staff-done.png")
        ui.tap("exit_button")
        ui.wait_screen("attract")


def test_five_wrong_pins_lock_the_pad_with_a_countdown(ui_core, ui_server, tmp_path):
    with drive(ui_core, screens=SCREENS) as ui:
        ui.app.tr.set_language("en")
        ui.scan(badge(ui_server, "S0002"))
        ui.wait_shown("staff")
        for left in (4, 3, 2, 1):
            type_pin(ui, "7531")
            wait_message(ui, f"{left} attempt(s) left")
        type_pin(ui, "1111")
        wait_message(ui, "Too many wrong PINs: try again in ")
        assert any(f"{m}:{s:02d}" in ui.text("message") for m in (4, 5) for s in range(60))
        assert ui.widget("keypad").disabled
        ui.screenshot(tmp_path / "staff-locked.png")
        ui.tap("exit_button")
        ui.wait_screen("attract")


def test_a_technician_code_shows_latency_and_doors_and_runs_the_selftest(
    ui_core, ui_server, tmp_path
):
    with drive(ui_core, screens=SCREENS) as ui:
        ui.app.tr.set_language("en")
        ui_core.locker.sim.force_open(3)
        ui.wait(lambda: ui_core.locker.door_state(3).value == "open", what="door 3 reads open")
        code = technician(ui_server)
        ui.scan(code)
        ui.wait_shown("diagnostics")
        ui.wait(lambda: "latency" in ui.text("info"), what="the report")
        info = ui.text("info")
        assert ui_server.url in info and " ms " in info
        assert "1 closed" in info and "3 open" in info
        assert f"Technician code {codes.parse(code)[0].nonce}" in ui.text("header")
        ui.screenshot(tmp_path / "diagnostics.png")
        ui.tap("selftest_button")
        ui.wait(lambda: "PASS  printer: test page printed" in ui.text("info"), what="self-test")
        assert "door 1" in ui_core.paper.wait_for_receipts(1)[0].text
        ui.tap("back_button")
        ui.wait_screen("attract")


def test_a_forged_technician_code_shows_nothing(ui_core, ui_server):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    with drive(ui_core, screens=SCREENS) as ui:
        ui.app.tr.set_language("en")
        ui.scan(technician(ui_server, Ed25519PrivateKey.generate()))
        ui.wait_shown("diagnostics")
        ui.wait(lambda: "refused" in ui.text("info"), what="the refusal")
        assert "latency" not in ui.text("info") and ui.widget("selftest_button").disabled
        ui.tap("back_button")
        ui.wait_screen("attract")


def test_maintenance_says_what_to_do_and_leaves_once_fixed(ui_core, tmp_path, monkeypatch):
    with drive(ui_core, screens=SCREENS) as ui:
        reason = Bilingual("凭条打印机无法使用", "The receipt printer is not working")
        session = ui.app.session
        # no public way in yet (see the report: MemberSession.set_maintenance is proposed)
        session._set(screen=Screen.MAINTENANCE, maintenance=reason)
        ui.wait_shown("maintenance")
        assert "凭条打印机无法使用" in ui.text("message") and "printer" in ui.text("message")
        assert "0:" in ui.text("recheck")
        ui.screenshot(tmp_path / "maintenance.png")
        screen = ui.screen
        ui_core.paper.set_cover_open(True)
        screen.check_now()
        ui.wait(lambda: "cover" in ui.text("message"), what="the recheck's own finding")
        assert ui.current == "maintenance"
        ui_core.paper.set_cover_open(False)
        monkeypatch.setattr(screen, "_left", 0.5)
        ui.wait_screen("attract", timeout_s=10)


def test_a_conflict_from_the_server_is_shown_to_staff_until_marked_handled(
    ui_core, ui_server, tmp_path
):
    """An offline redemption the server refuses (the price changed meanwhile) goes through the
    real sync worker, comes back as a conflict, and waits on the staff screen."""
    stale = {"txn_id": "7c0ffee0-0000-4000-8000-000000000001", "member_id": "M0001",
             "sku": "GIFT-MUG", "points": 500, "compartment": 1,
             "member_code": ui_server.code("M0001")}  # fmt: skip
    ui_core.outbox.add("offline_redemption", stale, event_id=stale["txn_id"])
    with drive(ui_core, screens=SCREENS) as ui:
        ui.wait(lambda: ui_core.outbox.alerts(), 15, "the server's conflict")
        (alert,) = ui_core.outbox.alerts()
        assert (alert.status, alert.reason) == ("conflict", "price_changed")
        ui.scan(badge(ui_server))
        ui.wait_shown("staff")
        type_pin(ui, "246810")
        wait_shown_state(ui, lambda s: s.step is StaffStep.RESTOCK, "the grid")
        assert "1 条同步提醒" in ui.text("message")
        assert ui.widget("alerts_button").opacity == 1 and "(1)" in ui.text("alerts_button")
        ui.tap("alerts_button")
        wait_message(ui, "离线兑换未能入账")
        assert "price_changed" in ui.text("message") and "7c0ffee0" in ui.text("message")
        assert ui.text("alerts_button") == "标记已处理"
        ui.screenshot(tmp_path / "staff-alert.png")
        ui.pump(0.6)  # past TapButton's debounce of the first tap
        ui.tap("alerts_button")
        wait_message(ui, "没有待处理的同步提醒")
        assert ui_core.outbox.alerts() == []
        wait_shown_state(ui, lambda s: not s.alerts, "no alerts")
        assert ui.widget("alerts_button").disabled and ui.widget("alerts_button").opacity == 0
        ui.tap("exit_button")
        ui.wait_screen("attract")
