"""Attract: the store's name, "show your member code" in Chinese and English at once (Chinese
first) with a hint animation, the language toggle, the offline banner; a scanned code moves
on by itself (the session decides). While the code is looked up the screen says so, counts
down the lookup's time limit with a progress bar, and offers cancel. A door alarm shows
above everything, in both languages, for staff (``UiState.alarms``)."""

from __future__ import annotations

from kivy.animation import Animation
from kivy.properties import BooleanProperty, NumericProperty, ObjectProperty, StringProperty

from kiosk.screens.base import KioskScreen, load_kv
from kiosk.screens.lookup import lookup_progress
from kiosk.screens.preview import CameraPreview  # noqa: F401 - used in attract.kv
from kiosk.services.ui_state import UiState

load_kv(__file__)


class AttractScreen(KioskScreen):
    store_zh = StringProperty("")
    store_en = StringProperty("")
    preview = ObjectProperty(None, allownone=True)  # the camera to preview (None: none shown)
    looking_up = BooleanProperty(False)  # a member lookup runs
    lookup_countdown = StringProperty("")
    lookup_done = NumericProperty(0.0)  # share of the lookup's time limit used, 0..1
    _hint: Animation | None = None

    def on_enter(self, *args) -> None:
        self.ids.preview.active = True  # the camera's picture only while it is seen
        prompt = self.ids.get("prompt")
        if prompt is not None and self._hint is None:
            self._hint = Animation(opacity=0.35, duration=0.9) + Animation(opacity=1, duration=0.9)
            self._hint.repeat = True
            self._hint.start(prompt)

    def on_leave(self, *args) -> None:
        self.ids.preview.active = False
        if self._hint is not None:
            self._hint.cancel_all(self.ids.prompt)
            self._hint = None
            self.ids.prompt.opacity = 1

    def both(self, key: str, _lang: str | None = None) -> str:
        """Chinese, then English on the next line (kv passes ``root.lang`` to re-render)."""
        return self.tr.both(key, sep="\n") if self.tr is not None else key

    def refresh(self, state: UiState) -> None:
        self.ids.door_alarm.text = self.alarm_text(state)
        error = state.error
        self.ids.error.text = "" if error is None else (error.zh if self.lang == "zh" else error.en)
        lookup = lookup_progress(state, self.session.lookup_timeout_s, self.tr)
        self.looking_up = lookup.running
        if lookup.running:
            self.lookup_countdown, self.lookup_done = lookup.countdown, lookup.done

    def alarm_text(self, state: UiState) -> str:
        """Each active door alarm in Chinese, then each in English, one per line."""
        return "\n".join(
            self.tr.text(
                f"door_alarm.{alarm.reason.value}",
                lang,
                n=alarm.compartment,
                since=alarm.since.strftime("%H:%M"),
            )
            for lang in ("zh", "en")
            for alarm in state.alarms
        )

    def cancel_lookup(self) -> None:
        self.session.cancel_lookup()

    def toggle_language(self) -> None:
        self.session.touch()
        self.tr.toggle()
