"""Payment: the cash part of a points + cash purchase as a QR code for the member's phone,
the amount, a countdown and a cancel button. The session moves on by itself once paid.

The QR code is drawn from segno's module matrix straight into a texture, one texel per
module, magnified with ``nearest`` filtering at a whole number of pixels per module: the
edges stay sharp at any size, which is what a phone camera needs.
"""

from __future__ import annotations

import logging
import math
import time

import segno
from kivy.clock import Clock
from kivy.graphics.texture import Texture

from kiosk.domain.transaction import TxnState
from kiosk.screens.base import KioskScreen, load_kv
from kiosk.screens.result import progress_text
from kiosk.services.ui_state import UiState

log = logging.getLogger(__name__)

load_kv(__file__)

QR_MIN_PX = 260  # scannable from a phone held at arm's length
QR_BORDER = 4  # the quiet zone the QR standard asks for, in modules
TICK_S = 0.25  # the local countdown between the engine's progress reports


def qr_texture(data: str, *, min_px: int = QR_MIN_PX) -> tuple[Texture, int]:
    """A texture of ``data`` as a QR code (one texel per module, quiet zone included) and the
    on-screen size in pixels: a whole number of pixels per module, at least ``min_px``."""
    qr = segno.make(data, error="m", micro=False)
    rows = [list(row) for row in qr.matrix_iter(scale=1, border=QR_BORDER)]
    n = len(rows)
    dark, light = b"\x00\x00\x00\xff", b"\xff\xff\xff\xff"
    # Kivy textures start at the bottom row; RGBA keeps every row 4-byte aligned for GL.
    buf = b"".join(dark if module else light for row in reversed(rows) for module in row)
    texture = Texture.create(size=(n, n), colorfmt="rgba")
    texture.blit_buffer(buf, colorfmt="rgba", bufferfmt="ubyte")
    texture.mag_filter = "nearest"
    texture.min_filter = "nearest"
    return texture, n * math.ceil(min_px / n)


class PaymentScreen(KioskScreen):
    """Shows ``state.progress.pay_url`` until the engine reports the payment's end."""

    _url: str | None = None
    _txn_id: str | None = None
    _deadline: float | None = None  # time.monotonic() when the payment window closes
    _cancelling: str | None = None  # the txn_id the member asked to cancel
    _tick_event = None

    def on_enter(self, *args) -> None:
        if self._tick_event is None:
            self._tick_event = Clock.schedule_interval(lambda _dt: self._tick(), TICK_S)

    def on_leave(self, *args) -> None:
        if self._tick_event is not None:
            self._tick_event.cancel()
            self._tick_event = None

    def refresh(self, state: UiState) -> None:
        ids, tr, progress = self.ids, self.tr, state.progress
        txn_id = progress.txn_id if progress is not None else None
        if txn_id != self._txn_id:  # a new purchase: forget the last one's countdown
            self._txn_id, self._deadline, self._cancelling = txn_id, None, None
        pick = state.selected
        cents = progress.amount_cents if progress and progress.amount_cents else 0
        if not cents and pick is not None:
            cents = pick.item.cash_cents
        ids.amount.text = tr("payment.amount", amount=tr.money(cents))
        ids.points.text = (
            tr("payment.points_held", points=tr.points(pick.item.points)) if pick else ""
        )
        waiting = (
            progress is not None and progress.state is TxnState.HELD and bool(progress.pay_url)
        )
        if waiting:
            self._show_qr(progress.pay_url)  # type: ignore[union-attr]
            if progress.seconds_left is not None:  # type: ignore[union-attr]
                deadline = time.monotonic() + progress.seconds_left  # type: ignore[union-attr]
                # never let a late report push the countdown up again
                self._deadline = (
                    deadline if self._deadline is None else min(self._deadline, deadline)
                )
        else:
            self._show_qr(None)
        ids.qr.opacity = 1 if waiting else 0
        ids.cancel_button.disabled = not waiting or self._cancelling == txn_id
        if self._cancelling is not None and self._cancelling == txn_id:
            ids.status.text = tr("payment.cancelling")
        elif waiting:
            ids.status.text = tr("payment.scan")
        elif progress is None or progress.state in (TxnState.NEW, TxnState.HELD):
            ids.status.text = tr("payment.preparing")
        else:
            ids.status.text = progress_text(tr, progress)
        ids.error.text = "" if state.error is None else (
            state.error.zh if self.lang == "zh" else state.error.en
        )  # fmt: skip
        self._tick()

    def _show_qr(self, url: str | None) -> None:
        if url == self._url:
            return
        self._url = url
        qr = self.ids.qr
        if url is None:
            qr.texture = None
            return
        texture, px = qr_texture(url)
        qr.texture = texture
        qr.size = (px, px)
        log.info("payment QR shown: %d px for %d modules", px, texture.width)

    def _tick(self) -> None:
        """Count down locally so the clock never looks frozen between engine reports."""
        if self.get_root_window() is None:  # the app stopped while this screen was shown
            self.on_leave()
            return
        showing = self._deadline is not None and self.ids.qr.opacity > 0
        if not showing:
            self.ids.countdown.text = ""
            return
        left = max(0.0, self._deadline - time.monotonic())  # type: ignore[operator]
        self.ids.countdown.text = self.tr("payment.countdown", countdown=self.tr.countdown(left))

    # ---- taps ------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop waiting for the payment: the engine releases the points and returns."""
        if self._txn_id is None or self._cancelling == self._txn_id:
            return
        self._cancelling = self._txn_id
        self.session.touch()
        self.session.cancel_payment()
        if self.state is not None:
            self.refresh(self.state)
