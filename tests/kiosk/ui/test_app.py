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
