"""The Kivy touch app: one ScreenManager, one screen per ``Screen``, rendering ``UiState``.

Only this module and ``kiosk/screens/`` import Kivy. The app is given the flows the composition
root built (``kiosk.wiring.build_ui`` -> ``KioskUi``) and builds the Kivy side: the screens, each
given its flow and the translator plus a narrow callable where it needs one (``screen_parts``),
and the Clock ticks. Everything a screen shows comes from the member session's ``UiState`` (or
its own flow's state); taps go back to the flows. Worker threads (camera, sync, transactions,
the maintenance monitor) reach the widgets only through ``post`` (``Clock.schedule_once``).

Kivy reads its environment switches at import: this module sets them (``prepare_kivy_env()``)
before its own Kivy imports, with ``setdefault``, so a caller that must choose first (the
demo's window or offscreen tour: ``kiosk/demo/rig.py``; tests and benches: headless) sets
them before importing this module.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

log = logging.getLogger(__name__)


def prepare_kivy_env(*, headless: bool | None = None) -> None:
    """Kivy's environment switches; they must be set before ``import kivy``."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ.setdefault("KIVY_HOME", str(Path(tempfile.gettempdir()) / "kiosk-kivy-home"))
    # Kivy's own log mode sets the root logger to NOTSET (every library's DEBUG line in the
    # journal); in PYTHON mode its lines go through our handlers like any other logger's
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    if headless if headless is not None else not os.environ.get("DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")  # Mesa EGL, no display needed


prepare_kivy_env()

from kivy.app import App  # noqa: E402
from kivy.clock import Clock  # noqa: E402
from kivy.core.text import DEFAULT_FONT, LabelBase  # noqa: E402
from kivy.core.window import Window  # noqa: E402
from kivy.uix.screenmanager import NoTransition, ScreenManager  # noqa: E402

from kiosk.errors import KioskError  # noqa: E402
from kiosk.i18n import Translator  # noqa: E402
from kiosk.services.ui_state import Screen, UiState  # noqa: E402

if TYPE_CHECKING:
    from kiosk.config import KioskConfig
    from kiosk.wiring import KioskUi

# a start that failed is shown this long, then the app exits and systemd starts it again
START_FAILED_EXIT_S = 15

_IDLE_SCREENS = (Screen.ATTRACT, Screen.MAINTENANCE)

# Screen -> "module:Class" under kiosk.screens; each module has its .kv beside it.
SCREENS: dict[Screen, str] = {
    Screen.ATTRACT: "attract:AttractScreen",
    Screen.MEMBER: "member:MemberScreen",
    Screen.CATALOG: "catalog:CatalogScreen",
    Screen.CONFIRM: "confirm:ConfirmScreen",
    Screen.PAYMENT: "payment:PaymentScreen",
    Screen.WHEEL: "wheel:WheelScreen",
    Screen.RESULT: "result:ResultScreen",
    Screen.STAFF: "staff:StaffScreen",
    Screen.DIAGNOSTICS: "diagnostics:DiagnosticsScreen",
    Screen.MAINTENANCE: "maintenance:MaintenanceScreen",
}


def register_font(path: Path) -> bool:
    """Make the CJK font the app-wide default (Roboto draws Chinese as boxes)."""
    if not path.exists():
        log.error("CJK font %s missing: Chinese shows as boxes; apt-get install fonts-wqy-microhei "
                  "or set [ui] font_path", path)  # fmt: skip
        return False
    LabelBase.register(DEFAULT_FONT, str(path))
    return True


def _load_clipboard_quietly() -> None:
    """Kivy looks for xclip or xsel for the X11 cut buffer when a text input is first
    imported and logs a CRITICAL traceback per missing tool; a kiosk has no X and needs no
    cut buffer, so the search runs once here with Kivy's log muted."""
    kivy_log = logging.getLogger("kivy")
    level = kivy_log.level
    kivy_log.setLevel(logging.CRITICAL + 1)
    try:
        import kivy.core.clipboard  # noqa: F401
    finally:
        kivy_log.setLevel(level)


def load_screen_class(spec: str):
    module_name, _, cls_name = spec.partition(":")
    module = importlib.import_module(f"kiosk.screens.{module_name}")
    return getattr(module, cls_name)


def post(fn: Callable[[], None]) -> None:
    """Run ``fn`` on the UI thread at the next frame (safe from any thread): what the flows'
    workers use to reach the widgets (``kiosk.wiring.build_ui(core, post=post)``)."""
    Clock.schedule_once(lambda _dt: fn(), 0)


def screen_parts(screen: Screen, ui: KioskUi) -> dict[str, object]:
    """What each screen is given beyond the member session and the translator: its flow, or a
    narrow callable, never the kiosk's parts."""
    kiosk = ui.config.kiosk
    return {
        Screen.ATTRACT: dict(store_zh=kiosk.store_name_zh, store_en=kiosk.store_name_en,
                             preview=ui.attract_preview),
        Screen.CATALOG: dict(pictures=ui.pictures),
        Screen.RESULT: dict(door_state=ui.door_state),
        Screen.STAFF: dict(flow=ui.staff),
        Screen.DIAGNOSTICS: dict(flow=ui.diagnostics, preview=ui.scanner),
        Screen.MAINTENANCE: dict(monitor=ui.maintenance),
    }.get(screen, {})  # fmt: skip


class KioskApp(App):
    """The kiosk's window.

    ``KioskApp(ui)``: the flows of a wired, started kiosk (``kiosk.wiring.build_ui``); the
    screens are built at once (tests, the demo). ``KioskApp.booting(config, start_ui)``: what
    ``kiosk run`` does: the first frame is a "starting" screen, ``start_ui`` (build the core,
    run crash recovery, build the flows) runs on a worker, and the screens, scanner, watchdog
    pings and maintenance checks begin once it returns.
    """

    title = "Loyalty kiosk"

    def __init__(
        self,
        ui: KioskUi | None = None,
        *,
        config: KioskConfig | None = None,
        start_ui: Callable[[], KioskUi] | None = None,
        on_frame: Callable[[], None] | None = None,
        screens: dict[Screen, str] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if ui is None and (config is None or start_ui is None):
            raise ValueError("KioskApp needs the flows, or a config and start_ui")
        self.ui = ui
        self.kiosk_config = ui.config if ui is not None else config
        self._start_ui = start_ui
        self.start_error: BaseException | None = None
        # the starting screen's until the flows come with theirs
        self.tr = ui.tr if ui is not None else Translator(self.kiosk_config.kiosk.language)
        self.on_frame = on_frame  # the systemd watchdog ping rides on the UI loop
        self.session = None  # the MemberSession once the flows are there
        self.screen_specs = screens or SCREENS  # tests may build a subset
        self.screens: dict[Screen, object] = {}
        self._ticks: list = []  # Clock intervals, cancelled on stop (the Clock outlives an app)
        self.last_state = UiState()

    @classmethod
    def booting(cls, config: KioskConfig, start_ui: Callable[[], KioskUi], **kwargs):
        return cls(None, config=config, start_ui=start_ui, **kwargs)

    def stop_on_signals(self) -> None:
        """``systemctl stop`` (SIGTERM) or Ctrl-C: leave the main loop at the next frame, so
        the caller stops the core cleanly (sync worker, relays off, printer closed) instead
        of the process dying mid-frame."""

        def handler(signum: int, _frame) -> None:
            log.info("signal %s: stopping", signal.Signals(signum).name)
            Clock.schedule_once(lambda _dt: self.stop(), 0)

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    # ---- threads -> main thread -----------------------------------------------------------
    def post(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the UI thread at the next frame (safe from any thread)."""
        post(fn)

    # ---- Kivy ----------------------------------------------------------------------------
    def build(self):
        register_font(self.kiosk_config.ui.font_path)
        # [ui] fullscreen: the display's whole screen (the kiosk's 800x480 panel), or an
        # 800x480 window (a desk, the demo, the tests)
        fullscreen = self.kiosk_config.ui.fullscreen
        Window.fullscreen = "auto" if fullscreen else False
        if not fullscreen:
            Window.size = (800, 480)
        self.manager = ScreenManager(transition=NoTransition())
        if self.ui is not None:
            self._attach(self.ui)
        else:
            from kiosk.screens.starting import StartingScreen

            kiosk = self.kiosk_config.kiosk
            self.starting = StartingScreen(
                name="starting", tr=self.tr, store_zh=kiosk.store_name_zh,
                store_en=kiosk.store_name_en,
            )  # fmt: skip
            self.manager.add_widget(self.starting)
            threading.Thread(target=self._boot, name="kiosk-start", daemon=True).start()
        return self.manager

    def _boot(self) -> None:
        """The worker behind the starting screen."""
        try:
            ui = self._start_ui()  # type: ignore[misc]
        except Exception as exc:  # shown here, logged, re-raised by kiosk run after the window
            if isinstance(exc, KioskError):
                log.critical("the kiosk could not start: %s", exc)
            else:
                log.critical("the kiosk could not start", exc_info=exc)
            self.start_error = failure = exc
            self.post(lambda: self._start_failed(failure))
            return
        self.post(lambda: self._attach(ui))

    def _start_failed(self, exc: BaseException) -> None:
        self.starting.failed(str(exc), START_FAILED_EXIT_S)
        self._ticks.append(Clock.schedule_once(lambda _dt: self.stop(), START_FAILED_EXIT_S))

    def _attach(self, ui: KioskUi) -> None:
        """The kiosk is started: build the screens and begin serving (main thread)."""
        _load_clipboard_quietly()
        self.ui, self.tr, self.session = ui, ui.tr, ui.session
        for screen, spec in self.screen_specs.items():
            widget = load_screen_class(spec)(
                name=screen.value, session=ui.session, tr=ui.tr, **screen_parts(screen, ui)
            )
            self.screens[screen] = widget
            self.manager.add_widget(widget)
        self.session.subscribe(self.render)
        self.tr.on_change(lambda _lang: self.render(self.last_state))
        every = self._ticks.append
        every(Clock.schedule_interval(lambda _dt: self.session.tick(), 1.0))
        if self.on_frame is not None:  # READY=1 only now: recovery is done, members served
            self.on_frame()
            every(Clock.schedule_interval(lambda _dt: self.on_frame(), 1.0))
        ui.start()  # camera codes to the session, door alarms, the maintenance checks
        self.render(self.session.state)
        if self.manager.has_screen("starting"):
            self.manager.remove_widget(self.manager.get_screen("starting"))

    def render(self, state: UiState) -> None:
        """Show ``state`` (main thread only)."""
        previous, self.last_state = self.last_state, state
        if state.screen is Screen.ATTRACT and previous.screen not in _IDLE_SCREENS:
            # a member or staff session ended: the next one starts in the store's language
            self.tr.set_language(self.kiosk_config.kiosk.language)
        screen = self.screens.get(state.screen)
        if screen is None:
            return
        if self.manager.current != state.screen.value:
            self.manager.current = state.screen.value
        screen.show(state)

    def on_stop(self) -> None:
        for tick in self._ticks:
            tick.cancel()
        self._ticks.clear()
        if self.ui is not None and self.session is not None:  # started: stop what it started
            self.ui.stop()
