"""Lucky wheel: the wheel drawn on the canvas, spun freely while the server draws, then
decelerated onto the segment the server returned; the published odds one tap away.

The prize is the server's (``result.ctx.prize.segment_idx``); the animation only shows it.
Segments are drawn the same size whatever their odds, as on the physical wheels members know;
the odds panel lists the real chance of each at this kiosk.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from kivy.animation import Animation
from kivy.clock import Clock
from kivy.core.text import Label as CoreLabel
from kivy.graphics import (
    Color,
    Ellipse,
    PopMatrix,
    PushMatrix,
    Rectangle,
    Rotate,
    Triangle,
)
from kivy.metrics import sp
from kivy.properties import BooleanProperty, ListProperty, NumericProperty
from kivy.uix.modalview import ModalView
from kivy.uix.widget import Widget

from kiosk.domain.receipts import PrizeKind
from kiosk.domain.wheel import Wheel
from kiosk.screens.base import KioskScreen, load_kv
from kiosk.screens.result import consequences, in_language
from kiosk.services.txn_steps import Outcome, TxnResult
from kiosk.services.ui_state import UiState

log = logging.getLogger(__name__)

PALETTE = [
    (0.91, 0.30, 0.24, 1), (0.95, 0.61, 0.07, 1), (0.18, 0.80, 0.44, 1),
    (0.20, 0.60, 0.86, 1), (0.61, 0.35, 0.71, 1), (0.10, 0.74, 0.61, 1),
]  # fmt: skip
_WON = (Outcome.DISPENSED, Outcome.DISPENSED_UNCONFIRMED, Outcome.ISSUED)


def segment_at(angle: float, count: int) -> int:
    """The segment under the pointer (12 o'clock) when the wheel is turned ``angle`` degrees
    counter-clockwise. Segment i spans [i, i+1) * 360/count clockwise from the top."""
    step = 360.0 / count
    return int((angle % 360.0) // step) % count


def landing_angle(idx: int, count: int, offset: float = 0.0) -> float:
    """An angle in [0, 360) that puts segment ``idx`` under the pointer; ``offset`` in
    (-0.5, 0.5) moves the rest point within the segment so it does not look canned."""
    step = 360.0 / count
    return ((idx + 0.5 + offset) * step) % 360.0


class WheelWidget(Widget):
    """The wheel itself. ``angle`` turns it; ``spin()`` runs freely, ``land()`` stops it."""

    angle = NumericProperty(0.0)
    labels = ListProperty([])
    speed = NumericProperty(720.0)  # degrees per second while the server draws
    turning = BooleanProperty(False)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._free = None
        self._anim: Animation | None = None
        self._rotate: Rotate | None = None
        self.bind(pos=self._draw, size=self._draw, labels=self._draw)

    def on_angle(self, _w, angle: float) -> None:
        if self._rotate is not None:
            self._rotate.angle = angle

    # ---- motion --------------------------------------------------------------------------
    def spin(self) -> None:
        """Turn at ``speed`` until ``land`` or ``stop``."""
        if self._free is not None:
            return
        self._cancel_anim()
        self.turning = True
        self._free = Clock.schedule_interval(self._advance, 0)

    def _advance(self, dt: float) -> None:
        if self.get_root_window() is None:  # the app stopped mid-spin
            self.halt()
            return
        self.angle = (self.angle + self.speed * min(dt, 0.1)) % 3600.0

    def land(self, idx: int, on_done: Callable[[], None], rng: random.Random | None = None) -> None:
        """Decelerate onto segment ``idx`` (at least two more turns), then ``on_done()``."""
        count = max(1, len(self.labels))
        offset = (rng or random).uniform(-0.3, 0.3)
        target = landing_angle(idx, count, offset)
        extra = (target - self.angle) % 360.0
        self._ease(720.0 + extra, on_done)

    def stop(self, on_done: Callable[[], None]) -> None:
        """Slow down to a stop wherever it comes to rest (no prize to show)."""
        self._ease(180.0 if self.turning else 0.0, on_done)

    def _ease(self, distance: float, on_done: Callable[[], None]) -> None:
        if self._free is not None:
            self._free.cancel()
            self._free = None
        self._cancel_anim()
        if distance <= 0:
            self.turning = False
            on_done()
            return
        # out_cubic starts at 3 * distance / duration: match the free spin's speed
        duration = 3.0 * distance / self.speed
        self.turning = True
        anim = Animation(angle=self.angle + distance, duration=duration, t="out_cubic")

        def finished(*_args) -> None:
            self._anim = None
            self.turning = False
            self.angle %= 360.0
            on_done()

        anim.bind(on_complete=finished)
        self._anim = anim
        anim.start(self)

    def halt(self) -> None:
        """Stop at once (the screen is left)."""
        if self._free is not None:
            self._free.cancel()
            self._free = None
        self._cancel_anim()
        self.turning = False

    def _cancel_anim(self) -> None:
        if self._anim is not None:
            anim, self._anim = self._anim, None
            anim.cancel(self)

    # ---- drawing -------------------------------------------------------------------------
    def _draw(self, *_args) -> None:
        self.canvas.clear()
        self.canvas.after.clear()
        count = len(self.labels)
        radius = min(self.width, self.height) / 2 - 14
        if count == 0 or radius <= 10:
            self._rotate = None
            return
        # not self.center: its cached value may lag behind a size change being handled
        cx, cy = self.x + self.width / 2, self.y + self.height / 2
        step = 360.0 / count
        with self.canvas:
            PushMatrix()
            self._rotate = Rotate(angle=self.angle, origin=(cx, cy))
            Color(1, 1, 1, 1)
            Ellipse(pos=(cx - radius - 4, cy - radius - 4), size=(2 * radius + 8,) * 2)
            for i in range(count):
                Color(*PALETTE[i % len(PALETTE)])
                Ellipse(pos=(cx - radius, cy - radius), size=(2 * radius, 2 * radius),
                        angle_start=i * step, angle_end=(i + 1) * step, segments=48)  # fmt: skip
            for i, text in enumerate(self.labels):
                label = CoreLabel(text=text, font_size=sp(15), bold=True, halign="center",
                                  text_size=(radius * 0.62, None))  # fmt: skip
                label.refresh()
                tex = label.texture
                PushMatrix()
                Rotate(angle=-(i + 0.5) * step, origin=(cx, cy))  # onto the segment's centre line
                Color(1, 1, 1, 1)
                Rectangle(texture=tex, size=tex.size,
                          pos=(cx - tex.width / 2, cy + radius * 0.62 - tex.height / 2))  # fmt: skip
                PopMatrix()
            PopMatrix()
            Color(0.12, 0.14, 0.2, 1)
            Ellipse(pos=(cx - 18, cy - 18), size=(36, 36))
        with self.canvas.after:  # the pointer does not turn
            Color(1, 1, 1, 1)
            top = cy + radius
            Triangle(points=[cx - 16, top + 14, cx + 16, top + 14, cx, top - 20])


class OddsPanel(ModalView):
    """The published odds at this kiosk, the cost, the daily limit and the rules."""


load_kv(__file__)


class WheelScreen(KioskScreen):
    """Spin, watch the wheel land on the server's segment, read the prize."""

    rng: random.Random | None = None  # tests may fix the rest point within a segment
    _spinning_for: int | None = None  # seq of the state that started the free spin
    _landing: str | None = None  # txn_id the wheel is landing on
    _landed: str | None = None  # txn_id whose result is shown
    _drawn: str | None = None  # txn_id landed on from the progress, before the result came
    _wheel_info: Wheel | None = None
    _spent = 0  # spins done since ``state.wheel`` was read: spins_left counts down locally
    odds_panel: OddsPanel | None = None

    def on_leave(self, *args) -> None:
        self.ids.wheel.halt()
        self._landing = self._spinning_for = self._drawn = None
        if self.odds_panel is not None:
            self.odds_panel.dismiss()

    def refresh(self, state: UiState) -> None:
        ids, tr, info = self.ids, self.tr, state.wheel
        if info is not self._wheel_info:
            self._wheel_info, self._spent = info, 0
        segments = info.segments if info is not None else ()
        ids.wheel.labels = [s.label(self.lang) for s in segments]
        ids.title.text = (info.name(self.lang) if info is not None else "") or tr("wheel.title")
        ids.spins_left.text = self._spins_text(info)
        ids.idle.text = (
            tr("common.idle_logout", countdown=tr.countdown(state.idle_left_s))
            if state.idle_left_s is not None and not state.busy
            else ""
        )
        self._animate(state)
        wheel = ids.wheel
        left = self._spins_left(info)
        ids.spin_button.disabled = state.busy or wheel.turning or not segments or left == 0
        ids.back_button.disabled = state.busy
        ids.odds_button.disabled = not segments
        ids.spin_button.text = (
            tr("wheel.spin_cost", points=tr.points(info.cost_points)) if info is not None
            else tr("wheel.spin")
        )  # fmt: skip
        self._show_result(state)
        if self.odds_panel is not None and self.odds_panel.parent is not None:
            self._fill_odds(info)

    # ---- the animation ---------------------------------------------------------------------
    def _animate(self, state: UiState) -> None:
        wheel, result = self.ids.wheel, state.result
        if state.busy:
            if self._spinning_for is None and self._drawn is None:
                self._spinning_for = state.seq
                self._landed = None
                wheel.spin()
            drawn = state.progress.prize if state.progress is not None else None
            if drawn is not None and self._spinning_for is not None and wheel.labels:
                # the server has drawn: land now, while a gift's door opens, so the member
                # sees the prize and which compartment to open before the transaction ends
                txn_id = state.progress.txn_id
                self._spinning_for, self._drawn, self._landing = None, txn_id, txn_id
                log.info("wheel lands on segment %d (txn %s)", drawn.segment_idx, txn_id)
                wheel.land(drawn.segment_idx, lambda: self._done_landing(txn_id), self.rng)
            return
        if self._drawn is not None:  # landed (or landing) on the draw already
            if result is not None and result.txn.txn_id == self._drawn and result.outcome in _WON:
                self._spent += 1
            self._drawn = None
            return
        if self._spinning_for is None:
            return  # nothing was spinning: nothing to land
        self._spinning_for = None
        if result is None:  # refused before the draw (offline, busy): just stop
            wheel.stop(lambda: self._done_landing(None))
            return
        txn_id = result.txn.txn_id
        self._landing = txn_id
        prize = result.ctx.prize
        if result.outcome in _WON:
            self._spent += 1
        if prize is None or not wheel.labels:
            wheel.stop(lambda: self._done_landing(txn_id))
            return
        log.info("wheel lands on segment %d (txn %s)", prize.segment_idx, txn_id)
        wheel.land(prize.segment_idx, lambda: self._done_landing(txn_id), self.rng)

    def _done_landing(self, txn_id: str | None) -> None:
        self._landing, self._landed = None, txn_id
        if self.state is not None:
            self.refresh(self.state)

    # ---- texts -------------------------------------------------------------------------------
    def _spins_left(self, info: Wheel | None) -> int | None:
        if info is None or info.spins_left is None:
            return None
        return max(0, info.spins_left - self._spent)

    def _spins_text(self, info: Wheel | None) -> str:
        tr, left = self.tr, self._spins_left(info)
        if left is not None:
            return tr("wheel.spins_left", n=left)
        if info is not None:
            return tr(
                "wheel.cost_limit", points=tr.points(info.cost_points), limit=info.daily_limit
            )
        return tr("wheel.unavailable")

    def _show_result(self, state: UiState) -> None:
        label, result = self.ids.result, state.result
        drawn = state.progress.prize if state.busy and state.progress is not None else None
        if drawn is not None and self._landed == state.progress.txn_id:
            name = drawn.label_zh if self.lang == "zh" else drawn.label_en
            key = "wheel.won_none" if drawn.kind is PrizeKind.NONE else "wheel.won"
            lines = [self.tr(key, label=name)]
            if drawn.kind is PrizeKind.GIFT and state.progress.compartment:
                lines.append(self.tr("wheel.door_open", n=state.progress.compartment))
            label.text = "\n".join(lines)
            return
        if state.busy or self._landing is not None or self.ids.wheel.turning:
            label.text = self.tr("wheel.spinning") if state.busy or self._landing else ""
            return
        lines: list[str] = []
        if result is not None and result.txn.txn_id == self._landed:
            lines = self._prize_lines(result)
        if state.error is not None:
            lines.append(in_language(state.error, self.lang))
        label.text = "\n".join(line for line in lines if line)

    def _prize_lines(self, result: TxnResult) -> list[str]:
        tr, prize = self.tr, result.ctx.prize
        lines: list[str] = []
        if prize is not None:
            name = prize.label_zh if self.lang == "zh" else prize.label_en
            key = "wheel.won_none" if prize.kind is PrizeKind.NONE else "wheel.won"
            lines.append(tr(key, label=name))
        if result.outcome not in _WON:
            lines.append(in_language(result.message, self.lang))
            lines += consequences(tr, result)
            return lines
        if prize is not None and prize.kind is PrizeKind.GIFT and result.txn.compartment:
            lines.append(tr("wheel.door_open", n=result.txn.compartment))
        elif prize is not None and prize.kind is PrizeKind.POINTS:
            lines.append(tr("wheel.points_added", points=tr.points(prize.points)))
        coupon = prize is not None and prize.kind is PrizeKind.COUPON
        if result.queued:
            lines.append(tr("wheel.coupon_queued" if coupon else "wheel.receipt_queued"))
        elif result.printed:
            lines.append(tr("wheel.coupon_printing" if coupon else "wheel.receipt_printing"))
        return lines

    # ---- taps ----------------------------------------------------------------------------------
    def spin(self) -> None:
        if self.ids.wheel.turning:
            return  # the last spin is still landing
        self.session.spin()

    def back(self) -> None:
        self.session.back()

    def show_odds(self) -> None:
        self.session.touch()
        if self.odds_panel is None:
            self.odds_panel = OddsPanel()
            self.odds_panel.screen = self
        self._fill_odds(self.state.wheel if self.state is not None else None)
        self.odds_panel.open()

    def _fill_odds(self, info: Wheel | None) -> None:
        tr, panel = self.tr, self.odds_panel
        assert panel is not None
        rows = [
            tr("wheel.odds_row", label=s.label(self.lang), odds=f"{100 * s.odds:.1f}%")
            for s in (info.segments if info is not None else ())
        ]
        panel.ids.heading.text = tr("wheel.odds_title")
        panel.ids.table.text = "\n".join(rows)
        panel.ids.terms.text = (
            tr("wheel.cost_limit", points=tr.points(info.cost_points), limit=info.daily_limit)
            if info is not None
            else ""
        )
        today = sorted(info.commitments.items()) if info is not None else []
        commitment = tr("wheel.commitment", day=today[0][0], hash=today[0][1]) if today else ""
        rules = info.rules(self.lang) if info is not None else ""
        panel.ids.rules.text = "\n\n".join(t for t in (rules, commitment) if t)
        panel.ids.close_button.text = tr("wheel.odds_close")
