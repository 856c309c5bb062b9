"""The demo's simulator keys: what the person at the demo presses instead of showing a phone
or opening the cabinet (``KEYS``, ``KeyPanel``), and the kiosk in a window with them
(``run_window``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from kiosk.demo.rig import JAM_DOOR

if TYPE_CHECKING:
    from kiosk.demo.rig import DemoRig

log = logging.getLogger(__name__)

# the simulator keys: what the person at the demo presses instead of showing a phone or
# opening the cabinet (operator help, English only: it is not part of the kiosk's UI)
KEYS = {
    "1-5": "show member M0001..M0005's code",
    "S": "show a staff badge (PIN {pin})",
    "T": "show a technician code",
    "C": "close every open door",
    "J": "jam door 1 at its next pulse",
    "P": "take out / put back the printer's paper",
    "M": "open / close the printer cover (maintenance)",
    "N": "cut / restore the network",
    "Y": "pay the pending payment",
}


def key_help(pin: str) -> str:
    return "  ".join(f"{k} {v.format(pin=pin)}" for k, v in KEYS.items())


# ---- the window and its simulator keys (the strip: kiosk/screens/sim_strip.py) -----------------

PANEL_PX = 64  # the key help strip above the kiosk's 800x480


class KeyPanel:
    """The demo's simulator: ``KEYS`` on the keyboard and a help strip above the kiosk."""

    def __init__(self, rig: DemoRig, app) -> None:
        self.rig, self.app = rig, app
        self.pin = rig.server.staff_badge()[1]
        self.help = key_help(self.pin)
        self.last = "ready"
        self.set_text: Callable[[str], None] | None = None  # the strip, once installed

    def install(self) -> None:
        from kiosk.screens.sim_strip import install_strip

        self.set_text = install_strip(self.app, PANEL_PX, self.on_char, self.tick, 0.5)
        print(f"Simulator keys: {self.help}", flush=True)
        self.tick()

    def tick(self) -> None:
        rig = self.rig
        rig.check_jam()
        status = (f"network {'up' if rig.server.relay.up else 'CUT'} | paper "
                  f"{'in' if rig.paper_loaded else 'OUT'} | cover "
                  f"{'OPEN' if rig.cover_open else 'shut'} | last: {self.last}")  # fmt: skip
        if self.set_text is not None:
            self.set_text(f"{self.help}\n{status}")

    def on_char(self, ch: str) -> bool:
        """A typed character (upper case): True if it is a simulator key."""
        action = self.action(ch)
        if action is None:
            return False
        try:
            self.last = f"{ch}: {action()}"
        except Exception as exc:  # a simulator slip must not close the demo
            log.exception("simulator key %s failed", ch)
            self.last = f"{ch} failed: {exc}"
        print(self.last, flush=True)
        self.tick()
        return True

    def action(self, ch: str) -> Callable[[], str] | None:
        rig, server = self.rig, self.rig.server
        if ch in "12345":
            member = f"M000{ch}"
            return lambda: _did(rig.present(server.member_code(member)), f"{member}'s code shown")
        return {
            "S": lambda: _did(rig.present(server.staff_badge()[0]), f"staff badge, PIN {self.pin}"),
            "T": lambda: _did(rig.present(server.technician_code()), "technician code shown"),
            "C": lambda: f"closed doors: {rig.close_doors() or 'none were open'}",
            "J": lambda: _did(rig.arm_jam(), f"door {JAM_DOOR} jams at its next pulse"),
            "P": lambda: _did(rig.set_paper(not rig.paper_loaded),
                              "paper in" if rig.paper_loaded else "paper out"),
            "M": self.toggle_cover,
            "N": lambda: "network up" if server.relay.toggle() else "network cut",
            "Y": lambda: "paid" if server.pay(self._pay_url()) else "no payment is waiting",
        }.get(ch)  # fmt: skip

    def _pay_url(self) -> str | None:
        progress = self.app.session.state.progress
        return progress.pay_url if progress is not None else None

    def toggle_cover(self) -> str:
        """Cover open: the kiosk checks its devices and goes out of service, as it would (at
        once: the maintenance monitor would notice within its period anyway)."""
        rig = self.rig
        rig.set_cover(not rig.cover_open)
        self.app.ui.maintenance.check_now()
        return "printer cover open" if rig.cover_open else "printer cover shut"


def _did(_done: object, message: str) -> str:
    return message


def run_window(rig: DemoRig) -> None:
    """The kiosk in a window, with the simulator keys, until the window closes."""
    from kiosk.app import KioskApp, post
    from kiosk.wiring import build_ui

    app = KioskApp(build_ui(rig.core, post=post))
    panel = KeyPanel(rig, app)
    app.bind(on_start=lambda *_: panel.install())
    app.run()
