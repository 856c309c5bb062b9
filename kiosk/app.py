"""The Kivy touch app: one ScreenManager, one screen per ``Screen``, rendering ``UiState``.

Only this module and ``kiosk/screens/`` import Kivy. Everything a screen shows comes from the
member session's ``UiState``; taps go back to the session. Worker threads (camera, sync,
transactions) reach the widgets only through ``post`` (``Clock.schedule_once``).

Call ``prepare_kivy_env()`` before the first Kivy import (``kiosk/__main__.py`` does).
"""

from __future__ import annotations

import importlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def prepare_kivy_env(*, headless: bool | None = None) -> None:
    """Kivy's environment switches; they must be set before ``import kivy``."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ.setdefault("KIVY_HOME", str(Path(tempfile.gettempdir()) / "kiosk-kivy-home"))
    if headless if headless is not None else not os.environ.get("DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")  # Mesa EGL, no display needed


prepare_kivy_env()

from kivy.app import App  # noqa: E402
from kivy.clock import Clock  # noqa: E402
from kivy.core.text import DEFAULT_FONT, LabelBase  # noqa: E402
from kivy.core.window import Window  # noqa: E402
from kivy.uix.screenmanager import NoTransition, ScreenManager  # noqa: E402

from kiosk.core import KioskCore  # noqa: E402
from kiosk.i18n import Translator  # noqa: E402
from kiosk.services.diagnostics import maintenance_reason  # noqa: E402
from kiosk.services.session import MemberSession, Screen, UiState  # noqa: E402

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


def load_screen_class(spec: str):
    module_name, _, cls_name = spec.partition(":")
    module = importlib.import_module(f"kiosk.screens.{module_name}")
    return getattr(module, cls_name)


class KioskApp(App):
    """The kiosk's window. ``core`` is the wired core (``kiosk.core.build_core``)."""

    title = "Loyalty kiosk"

    def __init__(
        self,
        core: KioskCore,
        *,
        translator: Translator | None = None,
        on_frame: Callable[[], None] | None = None,
        screens: dict[Screen, str] | None = None,
        check_maintenance_s: float = 30.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.core = core
        cfg = core.config
        self.tr = translator or Translator(cfg.kiosk.language)
        self.on_frame = on_frame  # the systemd watchdog ping rides on the UI loop
        self.session = MemberSession(
            identifier=core.identifier,
            engine=core.engine,
            catalog=lambda: core.catalog,
            online=core.connectivity.online,
            post=self.post,
            idle_logout_s=cfg.ui.idle_logout_s,
            wheel_info=lambda: core.wheels.get("LUCKY"),
        )
        self.screen_specs = screens or SCREENS  # tests may build a subset
        self.screens: dict[Screen, object] = {}
        self.check_maintenance_s = check_maintenance_s  # 0: never (tests of single screens)
        self._checking = threading.Event()
        self.last_state = UiState()

    # ---- threads -> main thread -----------------------------------------------------------
    def post(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the UI thread at the next frame (safe from any thread)."""
        Clock.schedule_once(lambda _dt: fn(), 0)

    # ---- Kivy ----------------------------------------------------------------------------
    def build(self):
        register_font(self.core.config.ui.font_path)
        Window.size = (800, 480)
        manager = ScreenManager(transition=NoTransition())
        for screen, spec in self.screen_specs.items():
            widget = load_screen_class(spec)(
                name=screen.value, session=self.session, tr=self.tr, core=self.core
            )
            self.screens[screen] = widget
            manager.add_widget(widget)
        self.manager = manager
        self.session.subscribe(self.render)
        self.tr.on_change(lambda _lang: self.render(self.last_state))
        Clock.schedule_interval(lambda _dt: self.session.tick(), 1.0)
        if self.on_frame is not None:
            Clock.schedule_interval(lambda _dt: self.on_frame(), 1.0)
        if self.core.scanner is not None:
            self.core.scanner.start(lambda code: self.session.on_scan(code.payload))
        if self.check_maintenance_s:
            self.check_maintenance()
            Clock.schedule_interval(lambda _dt: self.check_maintenance(), self.check_maintenance_s)
        self.render(self.session.state)
        return manager

    def check_maintenance(self) -> None:
        """Ask (on a worker: the printer query blocks) whether a device the kiosk needs is
        down; the session switches to the maintenance screen once no member is served."""
        if self._checking.is_set():
            return
        self._checking.set()

        def work() -> None:
            try:
                reason = maintenance_reason(self.core, self.tr)
            except Exception:  # a check must never take the kiosk down
                log.exception("maintenance check failed")
                reason = None
            finally:
                self._checking.clear()
            if reason is not None and reason != self.session.state.maintenance:
                log.warning("out of service: %s", reason.en.replace("\n", "; "))
            self.post(lambda: self.session.set_maintenance(reason))

        threading.Thread(target=work, name="kiosk-maintenance-check", daemon=True).start()

    def render(self, state: UiState) -> None:
        """Show ``state`` (main thread only)."""
        previous, self.last_state = self.last_state, state
        if state.screen is Screen.ATTRACT and previous.screen not in _IDLE_SCREENS:
            # a member or staff session ended: the next one starts in the store's language
            self.tr.set_language(self.core.config.kiosk.language)
        screen = self.screens.get(state.screen)
        if screen is None:
            return
        if self.manager.current != state.screen.value:
            self.manager.current = state.screen.value
        screen.show(state)

    def on_stop(self) -> None:
        if self.core.scanner is not None:
            self.core.scanner.stop()
