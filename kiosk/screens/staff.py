"""Staff: PIN pad after a staff badge, then the compartment grid to restock (open, count,
finish with a slip, reprint queued receipts). The flow is ``kiosk.services.staff_session``;
this screen renders its ``StaffState`` and forwards taps. The keypad types the PIN, and on the
grid the count of the selected compartment."""

from __future__ import annotations

import logging
import time

from kivy.clock import Clock
from kivy.metrics import dp, sp
from kivy.uix.button import Button

from kiosk.domain.payloads import PayloadKind
from kiosk.screens.base import KioskScreen, TapButton, load_kv
from kiosk.services.staff_session import DoorPhase, StaffFlow, StaffState, StaffStep
from kiosk.services.ui_state import Screen, UiState

log = logging.getLogger(__name__)

MAX_COUNT_DIGITS = 5
_TILE = {  # background of a compartment tile: needs check, selected, counted, plain
    "check": (0.75, 0.35, 0.1, 1),
    "selected": (0.15, 0.45, 0.85, 1),
    "counted": (0.15, 0.5, 0.3, 1),
    "plain": (0.22, 0.26, 0.34, 1),
}


class KeypadKey(TapButton):
    """A keypad key with a shorter debounce: staff type 1-1-1-1 faster than TapButton's 0.6 s,
    while the Pi's double report of one touch comes within a few milliseconds."""

    debounce_s = 0.12

    def on_touch_up(self, touch):
        if self.collide_point(*touch.pos) and touch.grab_current is self:
            now = time.monotonic()
            if now - self._last_release < self.debounce_s:
                touch.ungrab(self)
                self.state = "normal"
                return True
            self._last_release = now
        return Button.on_touch_up(self, touch)


load_kv(__file__)  # after KeypadKey: the kv's keys are KeypadKeys


class StaffScreen(KioskScreen):
    def __init__(self, *, flow: StaffFlow, **kwargs) -> None:
        self.flow = flow
        super().__init__(**kwargs)
        self.flow.subscribe(lambda _state: self.render())
        self.shown: StaffState = self.flow.state  # what the widgets show (a frame behind flow)
        self._tiles: dict[int, TapButton] = {}
        self._ticker = None

    # ---- lifecycle -------------------------------------------------------------------------
    def on_enter(self, *args) -> None:
        if self._ticker is None:
            self._ticker = Clock.schedule_interval(lambda _dt: self.flow.tick(), 1.0)

    def on_leave(self, *args) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    def refresh(self, state: UiState) -> None:
        routed = state.routed_code
        if state.screen is Screen.STAFF and routed and routed[0] is PayloadKind.STAFF:
            self.flow.begin(routed[1])
        self.render()

    # ---- rendering -------------------------------------------------------------------------
    def _text(self, bilingual) -> str:
        return "" if bilingual is None else (bilingual.zh if self.lang == "zh" else bilingual.en)

    def render(self) -> None:
        s: StaffState = self.flow.state
        ids, restock = self.ids, s.step in (StaffStep.RESTOCK, StaffStep.DONE)

        ids.message.text = self._text(s.message)
        ids.message.color = (1, 0.5, 0.45, 1) if s.error else (0.85, 0.9, 1, 1)
        ids.header.text = (
            self.t("staff.signed_in", name=s.staff_name) if s.staff_name else self.t("staff.title")
        )
        idle = s.idle_left_s
        ids.idle.text = (
            "" if idle is None else self.t("common.idle_logout", countdown=self.tr.countdown(idle))
        )
        on_grid = s.step is StaffStep.RESTOCK
        ids.pin_display.text = self._panel_text(s)
        ids.pin_display.font_size = sp(40) if s.step is StaffStep.PIN else sp(18)
        ids.pin_display.opacity = 0 if on_grid else 1
        ids.grid.opacity = 1 if on_grid else 0
        ids.grid.disabled = not on_grid or s.busy
        self._render_grid(s)
        for name in ("open_button", "count_ok", "count_input", "finish_button"):
            ids[name].opacity = 1 if on_grid else 0
            ids[name].disabled = not on_grid or s.busy
        ids.open_button.disabled |= s.selected is None
        ids.count_label.text = (
            self.t("staff.count_label", n=s.selected) if s.selected else self.t("staff.count_none")
        )
        ids.count_label.opacity = 1 if on_grid else 0
        ids.reprint_button.opacity = 1 if restock else 0
        ids.reprint_button.disabled = not restock or s.busy
        ids.reprint_button.text = self.t("staff.reprint", queued=s.queued)
        alerts_on = restock and bool(s.alerts)
        ids.alerts_button.opacity = 1 if alerts_on else 0
        ids.alerts_button.disabled = not alerts_on or s.busy
        ids.alerts_button.text = (
            self.t("staff.alert_handled_button")
            if s.alert_shown
            else self.t("staff.alerts_button", count=len(s.alerts))
        )
        keypad_on = (s.step is StaffStep.PIN and not s.locked_s) or on_grid
        ids.keypad.disabled = s.busy or not keypad_on
        ids.exit_button.disabled = s.busy
        self.shown = s

    def _panel_text(self, s: StaffState) -> str:
        """The PIN (masked), or after a restock what each compartment went from and to."""
        if s.step is StaffStep.DONE and s.summary is not None:
            return "\n".join(
                self.t("staff.summary_line", n=line.compartment, before=line.count_before,
                       after=line.count_after,
                       name=self._text(line.item) or self.t("staff.emptied"))
                for line in s.summary.lines
            )  # fmt: skip
        return "●" * s.pin_length if s.pin_length else self.t("staff.pin_label")

    def _render_grid(self, s: StaffState) -> None:
        grid = self.ids.grid
        numbers = [c.number for c in s.compartments]
        if numbers != list(self._tiles):
            grid.clear_widgets()
            self._tiles = {}
            grid.cols = 3 if len(numbers) <= 6 else 4 if len(numbers) <= 12 else 6
            for n in numbers:
                tile = TapButton(halign="center", valign="middle", font_size=sp(17),
                                 background_normal="", markup=False)  # fmt: skip
                tile.bind(size=lambda w, size: setattr(w, "text_size", (size[0] - dp(8), None)))
                tile.bind(on_release=lambda _w, n=n: self.select(n))
                self._tiles[n] = tile
                grid.add_widget(tile)
        for c in s.compartments:
            tile = self._tiles[c.number]
            name = self._text(c.name)
            key = "staff.tile" if c.name is not None else "staff.tile_empty"
            text = self.t(key, n=c.number, name=name, count=c.count)
            if c.needs_check:
                text += "\n" + self.t("staff.needs_check")
            tile.text = text
            look = ("selected" if c.number == s.selected else "check" if c.needs_check
                    else "counted" if c.counted else "plain")  # fmt: skip
            tile.background_color = _TILE[look]
        if s.door is DoorPhase.OPEN and s.opened in self._tiles:
            self._tiles[s.opened].text += "\n" + self.t("staff.door_is_open")

    def compartment_button(self, number: int) -> TapButton:
        """The tappable tile of compartment ``number`` (the demo tour and tests use it)."""
        return self._tiles[number]

    # ---- taps ------------------------------------------------------------------------------
    def select(self, number: int) -> None:
        if number != self.flow.state.selected:
            self.ids.count_input.text = ""
        self.flow.select(number)

    def on_key(self, digit: str) -> None:
        if self.flow.state.step is StaffStep.PIN:
            self.flow.key(digit)
        elif self.flow.state.step is StaffStep.RESTOCK:
            field = self.ids.count_input
            if len(field.text) < MAX_COUNT_DIGITS:
                field.text += digit

    def on_clear(self) -> None:
        if self.flow.state.step is StaffStep.PIN:
            self.flow.clear()
        else:
            self.ids.count_input.text = ""

    def on_ok(self) -> None:
        if self.flow.state.step is StaffStep.PIN:
            self.flow.submit_pin()
        else:
            self.submit_count()

    def submit_count(self) -> None:
        self.flow.enter_count(self.ids.count_input.text)
