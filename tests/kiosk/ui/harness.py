"""Run the real KioskApp offscreen (SDL offscreen driver, Mesa EGL) and drive it with taps.

with drive(core) as ui:            # UiDriver(build_ui(core, post=post)), as kiosk run wires it
    ui.scan(code)                 # as the camera would
    ui.wait_screen("member")
    ui.tap("catalog_button")      # a widget id on the current screen
    ui.screenshot(folder / "x.png")

The driver itself is product code (``kiosk.screens.driver.UiDriver``: the demo's screenshot tour uses
it too); this module makes sure Kivy renders offscreen before anything imports it.
"""

from __future__ import annotations

import os

# before kiosk.app imports Kivy's window: offscreen even on a desktop with a DISPLAY
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")

from kiosk.app import prepare_kivy_env

prepare_kivy_env(headless=True)

from kiosk.screens.driver import UiDriver  # noqa: E402

# isort: split
from kiosk.app import post  # noqa: E402
from kiosk.demo.slowness import slow_factor  # noqa: E402
from kiosk.wiring import KioskCore, build_ui  # noqa: E402

__all__ = ["UiDriver", "build_ui", "drive", "post", "slow_factor"]


def drive(core: KioskCore, **app_kwargs) -> UiDriver:
    """The app on ``core``'s flows, built now (after the test changed the core as it needs);
    its waits' bounds scale with ``KIOSK_SLOW_FACTOR`` (``kiosk.demo.slowness``)."""
    app_kwargs.setdefault("slow_factor", slow_factor())
    return UiDriver(build_ui(core, post=post), **app_kwargs)
