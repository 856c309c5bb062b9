"""The first frame of ``kiosk run``: a starting screen while the core starts on a worker."""

from __future__ import annotations

import threading

from kiosk.errors import PrinterError

from .harness import UiDriver, build_ui, post, slow_factor


def test_the_first_frame_says_starting_and_serving_begins_once_the_core_is_up(ui_core):
    go = threading.Event()
    pings: list[int] = []

    def start_ui():
        assert go.wait(10), "the test never let the core start"
        return build_ui(ui_core, post=post)

    with UiDriver(
        None, slow_factor(), config=ui_core.config, start_ui=start_ui,
        on_frame=lambda: pings.append(1),
    ) as ui:  # fmt: skip
        assert ui.current == "starting"
        assert ui_core.config.kiosk.store_name_zh in ui.screen.store
        assert ui.screen.status == "正在启动，请稍候…\nStarting, please wait…"
        ui.pump(0.3)
        # no member is served and systemd is not told READY before recovery is done
        assert ui.app.session is None and pings == []
        go.set()
        ui.wait_screen("attract")
        assert pings  # READY=1 went out with the first serving frame
        assert not ui.app.manager.has_screen("starting")
        assert ui.text("prompt") == "请出示会员码\nShow your member code"


def test_a_start_that_fails_says_why_and_the_app_exits_for_systemd_to_retry(ui_core):
    problem = "printer port /dev/ttyUSB0 not found: check the printer's USB cable and power"

    def start_ui():
        raise PrinterError(problem)

    with UiDriver(None, slow_factor(), config=ui_core.config, start_ui=start_ui) as ui:
        ui.wait(lambda: ui.app.start_error is not None, what="the failed start")
        ui.pump(0.1)
        assert ui.current == "starting" and ui.screen.problem == problem
        assert "无法启动" in ui.screen.status and "Could not start" in ui.screen.status
        assert ui.app._ticks  # the app stops itself after START_FAILED_EXIT_S
