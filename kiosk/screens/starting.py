"""Starting: the first frame after power-on, while the core starts behind it.

Crash recovery settles unfinished transactions (server calls with timeouts) and the devices
open before any member is served; until then the screen says the kiosk is starting, in both
languages. If the start fails, it says so with the technician's message and the app exits
(systemd starts it again)."""

from __future__ import annotations

from kivy.properties import StringProperty
from kivy.uix.screenmanager import Screen

from kiosk.screens.base import load_kv

load_kv(__file__)


class StartingScreen(Screen):
    """Not a ``KioskScreen``: there is no session yet, only the config and the translator."""

    store = StringProperty("")
    status = StringProperty("")
    problem = StringProperty("")

    def __init__(self, *, tr, store_zh: str, store_en: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.tr = tr
        self.store = f"{store_zh}\n{store_en}"
        self.status = tr.text("starting.wait", "zh") + "\n" + tr.text("starting.wait", "en")

    def failed(self, message: str, restart_s: int) -> None:
        tr = self.tr
        self.status = (
            tr.text("starting.failed", "zh", seconds=restart_s)
            + "\n"
            + tr.text("starting.failed", "en", seconds=restart_s)
        )
        self.problem = message
