"""Attract screen in the real app, offscreen: language toggle, offline banner, scan errors."""

from __future__ import annotations

import dataclasses

from kiosk.services.session import Screen

from .harness import drive

ONLY_ATTRACT = {Screen.ATTRACT: "attract:AttractScreen"}


SCAN_BOTH = "请出示会员码\nShow your member code"


def test_the_scan_prompt_is_in_chinese_and_english_at_once(ui_core):
    with drive(ui_core, screens=ONLY_ATTRACT) as ui:
        assert ui.current == "attract"
        assert ui.text("prompt") == SCAN_BOTH  # Chinese first, whatever the language
        ui.tap("language")
        assert ui.app.tr.language == "en" and ui.text("prompt") == SCAN_BOTH


def test_language_toggle_switches_every_text(ui_core, tmp_path):
    with drive(ui_core, screens=ONLY_ATTRACT) as ui:
        assert ui.current == "attract"
        assert ui.text("hint") == "将手机上的会员二维码对准摄像头"
        ui.tap("language")
        assert ui.text("hint") == "Hold the QR code in your app up to the camera"
        assert ui.text("language") == "中文"
        shot = ui.screenshot(tmp_path / "attract.png")
        assert shot.stat().st_size > 1000


def test_the_next_member_starts_in_the_store_language_after_a_session_in_english(ui_core):
    with drive(ui_core, screens=ONLY_ATTRACT) as ui:
        ui.tap("language")
        assert ui.app.tr.language == "en"
        state = ui.app.session.state
        ui.app.render(dataclasses.replace(state, screen=Screen.MEMBER))  # a member signs in
        assert ui.app.tr.language == "en"  # ... and keeps the language they chose
        ui.app.render(dataclasses.replace(state, screen=Screen.ATTRACT))  # ... and leaves
        assert ui.app.tr.language == "zh"
        assert ui.text("hint") == "将手机上的会员二维码对准摄像头"


def test_offline_banner_follows_connectivity(ui_core):
    with drive(ui_core, screens=ONLY_ATTRACT) as ui:
        assert ui.widget("offline").opacity == 0
        ui_core.connectivity.changed(False)
        ui.app.session.tick()  # the session re-reads connectivity every second
        ui.pump(0.1)
        assert ui.widget("offline").opacity == 1


def test_a_garbage_code_shows_an_error_and_stays(ui_core):
    with drive(ui_core, screens=ONLY_ATTRACT) as ui:
        ui.scan("LK1.M.garbage")
        ui.wait(lambda: ui.text("error") != "", what="an error")
        assert ui.current == "attract"


def test_the_camera_preview_shows_the_scanners_frames_and_blanks_when_it_is_unplugged(ui_core):
    from drivers.camera import make_scanner
    from kiosk.config import ScannerSection

    scanner = make_scanner(ScannerSection(kind="sim", fps=10, decoder="pyzbar"))
    ui_core.scanner = scanner  # the app starts and stops it
    cfg = ui_core.config
    ui_core.config = dataclasses.replace(cfg, ui=dataclasses.replace(cfg.ui, camera_preview=True))
    with drive(ui_core, screens=ONLY_ATTRACT) as ui:
        preview = ui.widget("preview")
        assert preview.width > 0
        tr = ui.app.tr  # the notice PIPL asks for, under the picture, in the member's language
        assert ui.text("camera_notice") == tr("attract.camera_notice")
        ui.tap("language")
        assert ui.text("camera_notice") == tr("attract.camera_notice") and tr.language == "en"
        ui.wait(lambda: preview.frames_shown >= 1, what="the first frame")
        assert preview.opacity == 1 and preview.texture.size == (640, 480)
        scanner.camera.unplug()
        ui.wait(lambda: preview.opacity == 0, what="the preview going blank")
        scanner.camera.replug()
        ui.wait(lambda: preview.opacity == 1, what="frames again")


def test_the_preview_is_off_unless_the_config_turns_it_on(ui_core):
    from drivers.camera import make_scanner
    from kiosk.config import ScannerSection

    assert ui_core.config.ui.camera_preview is False  # the default: shoppers are not shown
    ui_core.scanner = make_scanner(ScannerSection(kind="sim", fps=10, decoder="pyzbar"))
    with drive(ui_core, screens=ONLY_ATTRACT) as ui:
        ui.pump(0.5)
        preview = ui.widget("preview")
        assert preview.width == 0 and preview.frames_shown == 0
        assert ui.text("camera_notice") == ""


def test_a_lookup_with_no_answer_counts_down_can_be_cancelled_and_comes_back(ui_core, ui_server):
    """The store server takes the connection and never answers (a loopback socket): the
    screen says it is looking up, counts down with a progress bar, offers cancel, and is
    back with "offline" within the read timeout."""
    import time
    from pathlib import Path

    from kiosk.services.identify import MemberIdentifier
    from kiosk.sync.client import StoreServerClient
    from storeserver import members
    from tests.kiosk.test_member_lookup import SilentServer

    def code() -> str:
        with ui_server.store.db.transaction() as conn:
            store = ui_server.store
            return members.issue_code(store.ledger, conn, store.signing_key, "M0002")["code"]

    cfg = ui_core.config
    read_s = 1.5
    ui_core.config = dataclasses.replace(
        cfg, server=dataclasses.replace(cfg.server, read_timeout_s=read_s)
    )
    key = Path(cfg.server.public_key_file).read_text().strip()
    with SilentServer() as silent:
        client = StoreServerClient(silent.url, token="t", connect_timeout_s=0.5,
                                   read_timeout_s=read_s)  # fmt: skip
        ui_core.identifier = MemberIdentifier(client, ui_core.journal, key, now=time.time,
                                              cache_hours=24)  # fmt: skip
        with drive(ui_core, screens=ONLY_ATTRACT) as ui:
            tr = ui.app.tr
            ui.scan(code())
            ui.pump(0.1)
            assert ui.text("prompt") == tr.both("attract.looking_up", sep="\n")
            # 1.5 s shows as 0:02, then 0:01 (a loaded machine may already be past 0.5 s)
            shown = {tr("attract.lookup_left", countdown=c) for c in ("0:02", "0:01")}
            assert ui.text("hint") in shown
            assert ui.widget("lookup_progress").opacity == 1
            cancel = ui.widget("cancel_lookup")
            assert cancel.opacity == 1 and not cancel.disabled
            ui.wait(lambda: not ui.app.last_state.busy, read_s + 20, "the lookup to end")
            assert len(silent.accepted) == 1  # one read timeout, no retry: the bound held
            assert ui.text("error") == tr.text("identify.offline", "zh")
            assert ui.text("prompt") == SCAN_BOTH and cancel.opacity == 0 and cancel.disabled

            ui.scan(code())  # again, and this time the member gives up first
            ui.pump(0.1)
            ui.tap("cancel_lookup")
            assert not ui.app.session.state.busy
            assert ui.text("error") == tr.text("session.lookup_cancelled", "zh")
            ui.pump(read_s + 0.3)  # the late "offline" answer arrives: ignored
            assert ui.text("error") == tr.text("session.lookup_cancelled", "zh")
        client.close()


def test_a_forced_door_shows_a_staff_alert_in_both_languages_until_it_is_closed(ui_core):
    with drive(ui_core, screens=ONLY_ATTRACT) as ui:
        strip = ui.widget("door_alarm")
        assert strip.text == "" and strip.height == 0
        ui_core.locker.sim.force_open(3)
        ui.wait(lambda: strip.text != "", what="the door alarm")
        (alarm,) = ui_core.alarms.active()
        since = alarm.since.strftime("%H:%M")
        assert strip.text == (
            f"警报：3 号柜门未经指令被打开（{since} 起），请工作人员检查并关好\n"
            f"Alarm: door 3 opened with no command (since {since}): staff, check it and close it"
        )
        assert strip.height > 0 and strip.opacity == 1
        ui.tap("language")  # the member's language does not hide either line
        assert ui.text("door_alarm") == strip.text and "Alarm: door 3" in strip.text
        ui_core.locker.sim.close_door(3)
        ui.wait(lambda: strip.text == "", what="the alarm cleared")
        assert strip.height == 0
