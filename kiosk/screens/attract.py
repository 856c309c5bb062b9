"""Attract: the store's name, "show your member code" with a hint animation, the language
toggle, the offline banner; a scanned code moves on by itself (the session decides)."""

from __future__ import annotations

from kivy.animation import Animation

from kiosk.screens.base import KioskScreen, load_kv
from kiosk.screens.preview import CameraPreview  # noqa: F401 - used in attract.kv
from kiosk.services.ui_state import UiState

load_kv(__file__)


class AttractScreen(KioskScreen):
    _hint: Animation | None = None

    def on_enter(self, *args) -> None:
        self.ids.preview.active = True  # the camera's picture only while it is seen
        hint = self.ids.get("hint")
        if hint is not None and self._hint is None:
            self._hint = Animation(opacity=0.35, duration=0.9) + Animation(opacity=1, duration=0.9)
            self._hint.repeat = True
            self._hint.start(hint)

    def on_leave(self, *args) -> None:
        self.ids.preview.active = False
        if self._hint is not None:
            self._hint.cancel_all(self.ids.hint)
            self._hint = None
            self.ids.hint.opacity = 1

    def refresh(self, state: UiState) -> None:
        error = state.error
        self.ids.error.text = "" if error is None else (error.zh if self.lang == "zh" else error.en)

    def toggle_language(self) -> None:
        self.session.touch()
        self.tr.toggle()
