"""``UiDriver``: the real ``KioskApp`` driven by script, without ``run()``: real taps, the
event loop pumped by the caller, screenshots. The UI tests (tests/kiosk/ui/harness.py), the
demo's screenshot tour (kiosk/demo/tour.py) and bench/ui_bench.py use it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from kiosk.app import KioskApp  # first: it prepares Kivy's environment

# isort: split
from kivy.base import EventLoop
from kivy.core.window import Window
from kivy.tests import UnitTestTouch


@dataclass(frozen=True)
class WaitRecord:
    """One finished wait: how long it took against its (scaled) bound."""

    what: str
    seconds: float
    bound_s: float

    @property
    def share(self) -> float:
        return self.seconds / self.bound_s if self.bound_s > 0 else 1.0


class UiDriver:
    """The real ``KioskApp`` without ``run()``: the caller pumps the event loop."""

    def __init__(self, ui, slow_factor: float = 1.0, **app_kwargs) -> None:
        """``ui``: the flows (``kiosk.wiring.build_ui``), or None with ``config`` and
        ``start_ui`` for the starting screen, as ``KioskApp`` takes them. ``slow_factor``
        (``kiosk.demo.slowness``) multiplies every wait bound: a slow machine is not a failure."""
        self.app = KioskApp(ui, **app_kwargs)
        self.slow_factor = slow_factor
        self.closest: WaitRecord | None = None  # the wait nearest its bound; reset by callers

    def __enter__(self) -> UiDriver:
        self.app._run_prepare()  # builds the root and opens the (offscreen) window
        self.pump(0.1)
        return self

    def __exit__(self, *exc) -> None:
        self.app.stop()
        self.pump(0.05)

    # ---- time ----------------------------------------------------------------------------
    def pump(self, seconds: float = 0.05) -> None:
        """Run the event loop for ``seconds`` (frames, scheduled callbacks, posted updates)."""
        deadline = time.monotonic() + seconds
        while True:
            EventLoop.idle()
            if time.monotonic() >= deadline:
                return
            time.sleep(0.005)

    def bound(self, timeout_s: float) -> float:
        """A wait bound of ``timeout_s`` on a normal machine, on this one."""
        return timeout_s * self.slow_factor

    def wait(self, predicate, timeout_s: float = 10.0, what: str = "condition") -> None:
        began = time.monotonic()
        bound = self.bound(timeout_s)
        while not predicate():
            if time.monotonic() > began + bound:
                state = self.app.session.state
                raise AssertionError(
                    f"timed out waiting for {what} ({bound:g} s: {timeout_s:g} s x slow factor "
                    f"{self.slow_factor:g}); on {self.current} (session: "
                    f"{state.screen.value}, busy {state.busy}, error {state.error}, "
                    f"maintenance {state.maintenance})"
                )
            self.pump(0.02)
        self._note(WaitRecord(what, time.monotonic() - began, bound))

    def _note(self, record: WaitRecord) -> None:
        if self.closest is None or record.share > self.closest.share:
            self.closest = record

    def wait_screen(self, name: str, timeout_s: float = 10.0) -> None:
        self.wait(lambda: self.current == name, timeout_s, f"screen {name}")

    def wait_shown(self, name: str, timeout_s: float = 10.0) -> None:
        """``wait_screen``, the end of the switch (touches are dropped while a transition,
        even NoTransition, runs) and a layout (widgets get their places a frame later)."""
        self.wait_screen(name, timeout_s)
        self.wait(lambda: not self.app.manager.transition.is_active, what="the screen change")
        self.pump(0.1)

    def settled(self) -> bool:
        """No work runs and the widgets show the session's latest state."""
        shown = self.app.last_state
        return not shown.busy and shown is self.app.session.state

    # ---- looking ---------------------------------------------------------------------------
    @property
    def current(self) -> str:
        return self.app.manager.current

    @property
    def screen(self):
        return self.app.manager.current_screen

    def widget(self, widget_id: str):
        return self.screen.ids[widget_id]

    def text(self, widget_id: str) -> str:
        return self.widget(widget_id).text

    def screenshot(self, path: Path) -> Path:
        """Write the window to ``path`` (Kivy appends a counter; the file is renamed)."""
        self.pump(0.05)
        written = Window.screenshot(name=str(path.with_suffix("")) + ".png")
        Path(written).replace(path)
        return path

    # ---- acting ----------------------------------------------------------------------------
    def tap(self, widget_or_id, *, twice: bool = False) -> None:
        """A real touch down/up at the widget's centre (``twice``: the Pi's double report)."""
        widget = self.widget(widget_or_id) if isinstance(widget_or_id, str) else widget_or_id
        x, y = widget.to_window(*widget.center)
        for _ in range(2 if twice else 1):
            touch = UnitTestTouch(x, y)
            touch.touch_down()
            touch.touch_up()
        self.pump(0.05)

    def scan(self, payload: str) -> None:
        """A decoded code, delivered as the camera thread delivers it."""
        self.app.session.on_scan(payload)
        self.pump(0.05)
