"""Confirm: what the member is about to spend (points, and cash), the balance after, where
the gift comes out (or that a coupon prints), confirm and cancel, and a busy spinner.

The session ignores a second confirm while the first runs (``busy``); this screen also greys
its buttons the moment confirm is tapped, so a double-reported touch looks as harmless as
it is. The spinner stays until a newer state than the one our tap produced says we are idle.
"""

from __future__ import annotations

import logging

from kivy.animation import Animation
from kivy.properties import BooleanProperty, NumericProperty
from kivy.uix.widget import Widget

from kiosk.domain.catalog import ItemKind
from kiosk.screens.base import KioskScreen, load_kv
from kiosk.services.ui_state import UiState

log = logging.getLogger(__name__)


class BusySpinner(Widget):
    """A turning arc while ``active``: the wait is never a frozen screen."""

    angle = NumericProperty(0)
    active = BooleanProperty(False)
    _spin: Animation | None = None

    def on_active(self, _w, active: bool) -> None:
        if active and self._spin is None:
            self.angle = 0
            self._spin = Animation(angle=360, duration=1.0)
            self._spin.repeat = True
            self._spin.start(self)
        elif not active and self._spin is not None:
            self._spin.cancel(self)
            self._spin = None


load_kv(__file__)


class ConfirmScreen(KioskScreen):
    """Renders ``state.selected`` with ``state.compartment``; confirm/cancel go to the session."""

    busy = BooleanProperty(False)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._tapped_seq: int | None = None  # seq of the state our confirm tap produced

    def refresh(self, state: UiState) -> None:
        if self._tapped_seq is not None and state.seq > self._tapped_seq and not state.busy:
            self._tapped_seq = None  # e.g. refused: back here with an error, taps work again
        self.busy = state.busy or self._tapped_seq is not None
        ids, tr = self.ids, self.tr
        left = state.idle_left_s if state.idle_left_s is not None else self.session.idle_logout_s
        ids.idle.text = (
            "" if self.busy else tr("common.idle_logout", countdown=tr.countdown(left))
        )  # no logout while a transaction runs
        ids.error.text = "" if state.error is None else (
            state.error.zh if self.lang == "zh" else state.error.en
        )  # fmt: skip
        pick = state.selected
        if pick is None:
            for name in ("summary", "points", "cash", "balance_after", "where"):
                ids[name].text = ""
            ids.confirm_button.disabled = True
            return
        item = pick.item
        ids.summary.text = tr(
            "confirm.summary", item=item.name_zh if self.lang == "zh" else item.name_en
        )
        ids.points.text = tr("confirm.spend_points", points=tr.points(item.points))
        ids.cash.text = (
            tr("confirm.spend_cash", amount=tr.money(item.cash_cents)) if item.cash_cents else ""
        )
        if state.member is not None:
            after = state.member.view.balance - item.points
            ids.balance_after.text = tr("confirm.balance_after", points=tr.points(after))
        else:
            ids.balance_after.text = ""
        if item.kind is ItemKind.COUPON:
            ids.where.text = tr("confirm.coupon")
        elif state.compartment is not None:
            ids.where.text = tr("confirm.compartment", n=state.compartment)
        else:
            ids.where.text = ""
        ids.confirm_button.text = tr(
            "confirm.confirm_pay" if item.cash_cents else "confirm.confirm"
        )
        ids.confirm_button.disabled = self.busy
        ids.cancel_button.disabled = self.busy

    # ---- taps ------------------------------------------------------------------------------
    def do_confirm(self) -> None:
        if self.busy:
            return
        self.session.confirm()
        if self.session.state.busy:  # the session took it: wait for the transaction
            self._tapped_seq = self.session.state.seq
            self.busy = True
            self.ids.confirm_button.disabled = True
            self.ids.cancel_button.disabled = True
            self.ids.idle.text = ""

    def do_cancel(self) -> None:
        if not self.busy:
            self.session.back()
