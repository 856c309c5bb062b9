"""Rules every screen keeps, checked on the real app offscreen at 800x480:

- every button a person can see (opacity above 0, enabled or not) is at least 48x48 px;
- in English, the member screens show no Chinese, except where Chinese is the point: the
  attract screen's scan prompt (always both languages), the language toggle (it names the
  other language), and data, here the member's masked name (``李*``). Item, tier, prize and
  wheel names come from the store server in both languages and must be English.
"""

from __future__ import annotations

import dataclasses
import re

from kiosk.domain.receipts import Bilingual
from kiosk.services.staff_session import StaffStep
from storeserver import staff

from .harness import drive
from .screen_walk import (
    ids_of,
    member_walk,
    name_of,
    visible_buttons,
    visible_texts,
)

MIN_PX = 48
CJK = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uff00-\uffef]")
BILINGUAL_BY_DESIGN = {"prompt", "language"}  # attract's scan prompt; the language toggle


def too_small(root, names) -> list[str]:
    return [
        f"{name_of(b, names)}: {b.width:.0f}x{b.height:.0f}"
        for b in visible_buttons(root)
        if b.width < MIN_PX or b.height < MIN_PX
    ]


def test_every_visible_button_on_every_screen_is_at_least_48_px(ui_core, ui_server):
    with drive(ui_core) as ui:  # every screen, as kiosk run builds them
        assert tuple(ui.app.manager.size) == (800, 480)
        found: dict[str, list[str]] = {}
        checked: dict[str, int] = {}

        def check(stop: str, root=None) -> None:
            root = root or ui.screen
            names = ids_of(ui.screen)
            checked[stop] = len(visible_buttons(root))
            if small := too_small(root, names):
                found[stop] = small

        session = ui.app.session
        for stop in member_walk(ui, ui_core, ui_server):
            check(stop, ui.screen.odds_panel if stop == "odds" else None)
            if stop == "attract":  # and while a code is looked up: cancel shows
                looking = dataclasses.replace(session.state, busy=True, lookup_left_s=5.0)
                ui.app.render(looking)
                ui.pump(0.1)
                check("attract-lookup")
                ui.app.render(session.state)
                ui.pump(0.05)

        session.logout()
        ui.wait_shown("attract")
        with ui_server.store.db.transaction() as conn:
            badge = staff.issue_badge(conn, ui_server.store.clock, ui_server.store.signing_key,
                                      "S0001", 30)["code"]  # fmt: skip
        ui.scan(badge)
        ui.wait_shown("staff")
        check("staff-pin")
        for digit in "246810":
            ui.tap(f"key_{digit}")
        ui.tap("key_ok")
        flow = ui.screen.flow
        ui.wait(lambda: ui.screen.shown.step is StaffStep.RESTOCK, what=f"the grid: {flow.state}")
        ui.pump(0.1)
        check("staff-grid")
        ui.tap("exit_button")
        ui.wait_shown("attract")

        ui.scan(ui_server.technician_code())
        ui.wait_shown("diagnostics")
        tech = ui.screen.flow
        ui.wait(lambda: tech.state.step.name == "READY" and not tech.state.busy,
                what="the technician report")  # fmt: skip
        ui.pump(0.1)
        check("diagnostics")
        ui.tap("back_button")
        ui.wait_shown("attract")

        session.set_maintenance(Bilingual("打印机故障", "printer down"))
        ui.wait_shown("maintenance")
        check("maintenance")

    assert found == {}, f"buttons under {MIN_PX} px: {found}"
    expected = ("attract", "attract-lookup", "member", "catalog", "confirm", "payment",
                "result", "wheel", "odds", "staff-pin", "staff-grid", "diagnostics")  # fmt: skip
    assert all(checked.get(stop, 0) > 0 for stop in expected), checked  # the walk saw buttons


def test_in_english_the_member_screens_show_no_chinese(ui_core, ui_server):
    found: dict[str, list[str]] = {}
    seen: dict[str, int] = {}
    with drive(ui_core) as ui:
        for stop in member_walk(ui, ui_core, ui_server, english=True):
            assert ui.app.tr.language == "en", f"the language went back to zh on {stop}"
            root = ui.screen.odds_panel if stop == "odds" else ui.screen
            names = ids_of(root)
            who = ui.app.session.state.member
            masked = who.view.name_masked if who is not None else None
            texts = visible_texts(root)
            seen[stop] = len(texts)
            chinese = [
                f"{name_of(w, names)}: {text!r}"
                for w, text in texts
                if names.get(id(w)) not in BILINGUAL_BY_DESIGN
                and CJK.search(text.replace(masked, "") if masked else text)
            ]
            if chinese:
                found[stop] = chinese
            if stop == "wheel":  # segment labels are drawn on the canvas, not in labels
                labels = ui.widget("wheel").labels
                assert labels and not any(CJK.search(x) for x in labels), labels
    assert found == {}, f"Chinese on English screens: {found}"
    assert all(seen.get(stop, 0) > 2 for stop in ("catalog", "confirm", "payment", "result",
                                                  "wheel", "odds", "member")), seen  # fmt: skip


def test_no_screen_or_flow_of_a_built_app_holds_the_container(ui_core):
    """The other half of tests/kiosk/test_layer_rules.py's composition-root rules: what the
    app really holds once built, Kivy properties included."""
    from kiosk.wiring import KioskCore

    def held(obj) -> dict[str, object]:
        values = dict(vars(obj))
        if hasattr(obj, "properties"):  # Kivy properties live outside __dict__
            values |= {name: getattr(obj, name) for name in obj.properties()}
        return values

    with drive(ui_core) as ui:  # every screen, as kiosk run builds them
        flows = {f: getattr(ui.app.ui, f) for f in ("session", "staff", "diagnostics",
                                                     "maintenance")}  # fmt: skip
        parts = {f"screen {s.value}": w for s, w in ui.app.screens.items()} | flows
        assert len(parts) == len(ui.app.screens) + 4 >= 14
        offenders = [
            f"{where}.{name}"
            for where, part in parts.items()
            for name, value in held(part).items()
            if value is ui_core or isinstance(value, KioskCore)
        ]
    assert offenders == [], "screens and flows get their ports, never the core"
