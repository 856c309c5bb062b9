"""Attract screen in the real app, offscreen: language toggle, offline banner, scan errors."""

from __future__ import annotations

import dataclasses

from kiosk.services.session import Screen

from .harness import UiDriver

ONLY_ATTRACT = {Screen.ATTRACT: "attract:AttractScreen"}


def test_language_toggle_switches_every_text(ui_core, tmp_path):
    with UiDriver(ui_core, screens=ONLY_ATTRACT) as ui:
        assert ui.current == "attract"
        assert ui.text("hint") == "请出示会员码"
        ui.tap("language")
        assert ui.text("hint") == "Show your member code"
        assert ui.text("language") == "中文"
        shot = ui.screenshot(tmp_path / "attract.png")
        assert shot.stat().st_size > 1000


def test_the_next_member_starts_in_the_store_language_after_a_session_in_english(ui_core):
    with UiDriver(ui_core, screens=ONLY_ATTRACT) as ui:
        ui.tap("language")
        assert ui.app.tr.language == "en"
        state = ui.app.session.state
        ui.app.render(dataclasses.replace(state, screen=Screen.MEMBER))  # a member signs in
        assert ui.app.tr.language == "en"  # ... and keeps the language they chose
        ui.app.render(dataclasses.replace(state, screen=Screen.ATTRACT))  # ... and leaves
        assert ui.app.tr.language == "zh"
        assert ui.text("hint") == "请出示会员码"


def test_offline_banner_follows_connectivity(ui_core):
    with UiDriver(ui_core, screens=ONLY_ATTRACT) as ui:
        assert ui.widget("offline").opacity == 0
        ui_core.connectivity.changed(False)
        ui.app.session.tick()  # the session re-reads connectivity every second
        ui.pump(0.1)
        assert ui.widget("offline").opacity == 1


def test_a_garbage_code_shows_an_error_and_stays(ui_core):
    with UiDriver(ui_core, screens=ONLY_ATTRACT) as ui:
        ui.scan("LK1.M.garbage")
        ui.wait(lambda: ui.text("error") != "", what="an error")
        assert ui.current == "attract"


def test_the_camera_preview_shows_the_scanners_frames_and_blanks_when_it_is_unplugged(ui_core):
    from drivers.camera import make_scanner
    from kiosk.config import ScannerSection

    scanner = make_scanner(ScannerSection(kind="sim", fps=10, decoder="pyzbar"))
    ui_core.scanner = scanner  # the app starts and stops it
    with UiDriver(ui_core, screens=ONLY_ATTRACT) as ui:
        preview = ui.widget("preview")
        assert preview.width > 0  # [ui] camera_preview is on by default
        ui.wait(lambda: preview.frames_shown >= 1, what="the first frame")
        assert preview.opacity == 1 and preview.texture.size == (640, 480)
        scanner.camera.unplug()
        ui.wait(lambda: preview.opacity == 0, what="the preview going blank")
        scanner.camera.replug()
        ui.wait(lambda: preview.opacity == 1, what="frames again")


def test_the_preview_can_be_turned_off_in_the_config(ui_core):
    from drivers.camera import make_scanner
    from kiosk.config import ScannerSection

    cfg = ui_core.config
    ui_core.config = dataclasses.replace(cfg, ui=dataclasses.replace(cfg.ui, camera_preview=False))
    ui_core.scanner = make_scanner(ScannerSection(kind="sim", fps=10, decoder="pyzbar"))
    with UiDriver(ui_core, screens=ONLY_ATTRACT) as ui:
        ui.pump(0.5)
        preview = ui.widget("preview")
        assert preview.width == 0 and preview.frames_shown == 0
