"""Result: "open compartment N and take your gift" with the door state live, the printing
status, and on failure what happens next (points returned, voucher, ask staff).

While the transaction still runs (``state.busy``) it shows one line per ``TxnState`` so the
wait is never silent. The door is read with ``locker.door_state(n)`` every 0.2 s from the
main thread: GpioLocker (the Pi and the simulator alike) answers from its debounced state
under a short lock that no pulse or door wait holds, so the read never blocks the UI.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from kivy.clock import Clock

from kiosk.domain.receipts import Bilingual
from kiosk.domain.transaction import TxnState
from kiosk.errors import KioskError
from kiosk.i18n import Translator
from kiosk.ports import DoorState
from kiosk.screens.base import KioskScreen, load_kv
from kiosk.services.txn_steps import Outcome, Progress, TxnResult
from kiosk.services.ui_state import UiState

log = logging.getLogger(__name__)

load_kv(__file__)

DOOR_POLL_S = 0.2
_GIFT_OUT = (Outcome.DISPENSED, Outcome.DISPENSED_UNCONFIRMED)
_VOUCHER = (Outcome.VOIDED, Outcome.NEEDS_CHECK)
# Steps at which the door is (about to be) open and worth watching.
_DOOR_STEPS = (TxnState.DOOR_OPENING, TxnState.DISPENSED, TxnState.CAPTURED, TxnState.PRINTED,
               TxnState.DONE)  # fmt: skip
_TITLES = {
    Outcome.DISPENSED: "result.title_take_gift",
    Outcome.DISPENSED_UNCONFIRMED: "result.title_take_gift",
    Outcome.ISSUED: "result.title_issued",
    Outcome.REFUSED: "result.title_refused",
    Outcome.VOIDED: "result.title_voided",
    Outcome.NEEDS_CHECK: "result.title_needs_check",
    Outcome.VOID_PENDING: "result.title_void_pending",
}


def in_language(text: Bilingual | None, lang: str) -> str:
    """One language of a service-made text (engine messages, server labels)."""
    if text is None:
        return ""
    return text.zh if lang == "zh" else text.en


def progress_text(tr: Translator, progress: Progress | None) -> str:
    """What a running transaction is doing, one line per state (shared with payment)."""
    state = progress.state if progress is not None else TxnState.NEW
    compartment = progress.compartment if progress is not None else None
    return tr(f"result.state.{state.name}", n=compartment if compartment is not None else "")


def printing_text(tr: Translator, result: TxnResult) -> str:
    """Receipt or voucher: printing now, waiting for paper, or nothing to print."""
    voucher = result.outcome in _VOUCHER
    if result.queued:
        return tr("result.voucher_queued" if voucher else "result.receipt_queued")
    if result.printed:
        return tr("result.voucher_printing" if voucher else "result.receipt_printing")
    return ""


def consequences(tr: Translator, result: TxnResult) -> list[str]:
    """Lines saying what happened to the member's points, cash and gift."""
    ctx, lines = result.ctx, []
    if ctx.points_returned:
        lines.append(tr("result.points_returned", points=tr.points(ctx.points_returned)))
    if ctx.cash_refunded_cents:
        lines.append(tr("result.cash_refunded", amount=tr.money(ctx.cash_refunded_cents)))
    if ctx.coupon_code:
        lines.append(tr("result.coupon_code", code=ctx.coupon_code))
    if ctx.balance_final is not None and result.outcome in (*_GIFT_OUT, Outcome.ISSUED):
        lines.append(tr("result.balance", points=tr.points(ctx.balance_final)))
    return lines


class ResultScreen(KioskScreen):
    """The outcome of a redemption or purchase; ``done`` goes back to the member screen."""

    _door: int | None = None  # the compartment whose door is watched
    _opening = False  # the transaction still runs: a closed door is "opening", not "closed"
    _poll_event = None

    def __init__(self, *, door_state: Callable[[int], DoorState], **kwargs) -> None:
        self.door_state = door_state  # the locker's sensor, read while the door is watched
        super().__init__(**kwargs)

    def on_leave(self, *args) -> None:
        self._stop_poll()

    def refresh(self, state: UiState) -> None:
        ids, tr, result = self.ids, self.tr, state.result
        ids.done_button.disabled = state.busy
        ids.idle.text = (
            tr("common.idle_logout", countdown=tr.countdown(state.idle_left_s))
            if state.idle_left_s is not None and not state.busy
            else ""
        )
        if state.busy:
            ids.title.text = tr("result.title_busy")
            ids.detail.text = progress_text(tr, state.progress)
            ids.printing.text = ""
            opening = state.progress is not None and state.progress.state is TxnState.DOOR_OPENING
            self._watch(self._busy_door(state), opening=opening)
            return
        if result is None:
            ids.title.text = tr("result.title_error") if state.error else tr("result.title_done")
            ids.detail.text = in_language(state.error, self.lang)
            ids.printing.text = ""
            self._watch(None)
            return
        number = result.txn.compartment
        ids.title.text = tr(_TITLES[result.outcome], n=number if number is not None else "")
        lines = [in_language(result.message, self.lang), *consequences(tr, result)]
        if state.error is not None:
            lines.append(in_language(state.error, self.lang))
        ids.detail.text = "\n".join(line for line in lines if line)
        ids.printing.text = printing_text(tr, result)
        if result.outcome in _GIFT_OUT and number is not None:
            self._watch(number)
        elif result.outcome is Outcome.NEEDS_CHECK and number is not None:
            self._watch(None)
            ids.door.text = tr("result.door_check", n=number)
        else:
            self._watch(None)

    # ---- the door ------------------------------------------------------------------------
    @staticmethod
    def _busy_door(state: UiState) -> int | None:
        progress = state.progress
        if progress is None or progress.state not in _DOOR_STEPS:
            return None
        return progress.compartment

    def _watch(self, number: int | None, *, opening: bool = False) -> None:
        self._door, self._opening = number, opening
        if number is None:
            self._stop_poll()
            self.ids.door.text = ""
            return
        self._poll_door()
        if self._poll_event is None:
            self._poll_event = Clock.schedule_interval(lambda _dt: self._poll_door(), DOOR_POLL_S)

    def _stop_poll(self) -> None:
        if self._poll_event is not None:
            self._poll_event.cancel()
            self._poll_event = None

    def _poll_door(self) -> None:
        number = self._door
        if number is None or self.get_root_window() is None:  # left, or the app stopped
            self._stop_poll()
            return
        try:
            door = self.door_state(number)
        except KioskError as exc:
            log.warning("compartment %d: door state unreadable: %s", number, exc)
            self.ids.door.text = self.tr("result.door_unknown", n=number)
            return
        if door is DoorState.OPEN:
            key = "result.door_open"
        else:
            key = "result.door_opening" if self._opening else "result.door_closed"
        self.ids.door.text = self.tr(key, n=number)

    # ---- taps ------------------------------------------------------------------------------
    def done(self) -> None:
        """Back to the member screen (the session ignores it while a transaction runs)."""
        self.session.back()
