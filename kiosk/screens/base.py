"""What every screen shares: the member session, the translator, its .kv file, debounced buttons.

A screen renders a ``UiState`` in ``show(state)`` and forwards taps to ``self.session``. It is
given its flow and the translator (kiosk/app.py passes them from ``kiosk.wiring.KioskUi``), plus
a narrow callable where it needs one (the result screen's door state), never the kiosk's parts.
Every text goes through ``self.tr`` (keys in ``kiosk/locale/<screen>.toml``); no literal
user-facing strings in .py or .kv files.
"""

from __future__ import annotations

import time
from pathlib import Path

from kivy.lang import Builder
from kivy.metrics import dp
from kivy.properties import NumericProperty, ObjectProperty, StringProperty
from kivy.uix.button import Button
from kivy.uix.screenmanager import Screen

from kiosk.services.ui_state import UiState

MIN_TOUCH_DP = 48  # touch targets at least 48 px on the 800x480 panel
DEBOUNCE_S = 0.6  # a Pi touchscreen may report one touch twice (kivy/kivy#3801)

_loaded: set[str] = set()


def load_kv(module_file: str) -> None:
    """Load the .kv beside ``module_file`` once (path from __file__: systemd starts us
    from another folder)."""
    path = str(Path(module_file).with_suffix(".kv"))
    if path not in _loaded:
        Builder.load_file(path)
        _loaded.add(path)


class TapButton(Button):
    """A button of at least 48 px that ignores a second release within ``DEBOUNCE_S``."""

    min_touch = NumericProperty(dp(MIN_TOUCH_DP))
    debounce_s = NumericProperty(DEBOUNCE_S)  # keypads use less: 1-1-1-1 is four taps

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._last_release = -1e9
        self.size_hint_min = (self.min_touch, self.min_touch)

    def on_touch_up(self, touch):
        if self.collide_point(*touch.pos) and touch.grab_current is self:
            now = time.monotonic()
            if now - self._last_release < self.debounce_s:
                touch.ungrab(self)
                self.state = "normal"
                return True
            self._last_release = now
        return super().on_touch_up(touch)


class KioskScreen(Screen):
    """Base of all screens; subclasses set widgets in their .kv and fill them in ``show``."""

    session = ObjectProperty(None)  # the MemberSession: every screen follows its UiState
    tr = ObjectProperty(None)
    state = ObjectProperty(None, allownone=True)
    lang = StringProperty("zh")  # kv texts name it so they re-render on a language switch

    def __init__(self, *, session, tr, **kwargs) -> None:
        super().__init__(session=session, tr=tr, **kwargs)

    def show(self, state: UiState) -> None:
        """Render ``state``: kept for kv bindings (``root.state``), then ``refresh``."""
        self.lang = self.tr.language
        self.state = state
        self.refresh(state)

    def refresh(self, state: UiState) -> None:
        """Python-side updates a subclass needs beyond its kv bindings."""

    def t(self, key: str, _lang: str | None = None, **fields) -> str:
        """The text for ``key`` in the current language.

        In kv pass ``root.lang`` so the text follows a language switch:
        ``text: root.t('attract.scan', root.lang)``.
        """
        return self.tr(key, **fields) if self.tr is not None else key
