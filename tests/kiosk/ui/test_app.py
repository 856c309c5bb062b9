"""The app's window (kiosk/app.py): what the config decides about it."""

from __future__ import annotations

import dataclasses

import pytest
from kivy.core.window import Window

from .harness import drive

ONLY_ATTRACT = {}


@pytest.mark.parametrize(("fullscreen", "expected"), [(True, "auto"), (False, False)])
def test_ui_fullscreen_decides_whether_the_window_takes_the_screen(ui_core, fullscreen, expected):
    cfg = ui_core.config
    ui_core.config = dataclasses.replace(cfg, ui=dataclasses.replace(cfg.ui, fullscreen=fullscreen))
    with drive(ui_core, screens=ONLY_ATTRACT):
        assert Window.fullscreen == expected
        if not fullscreen:  # a window of the panel's size; fullscreen: the display's size
            assert tuple(Window.size) == (800, 480)


def test_the_drivers_wait_bounds_scale_with_its_slow_factor(ui_core):
    """The bound a wait uses, read back (no timing): the one it ran to, the one it failed at."""
    with drive(ui_core, slow_factor=3) as ui:
        assert ui.bound(10) == 30
        ui.wait(lambda: True, 10, "nothing")
        assert (ui.closest.what, ui.closest.bound_s) == ("nothing", 30)
        with pytest.raises(AssertionError, match=r"never \(0\.03 s: 0\.01 s x slow factor 3\)"):
            ui.wait(lambda: False, 0.01, "never")
