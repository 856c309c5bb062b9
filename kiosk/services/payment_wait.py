"""The payment countdown of a points + cash purchase (kiosk/services/transactions.py holds one).

While the points are held, the kiosk polls the store server for the cash part until it is paid,
the member cancels (``cancel``, from the payment screen's thread), the server ends the payment,
or the kiosk's own ``timeout_s`` runs out; the engine voids the hold on every ending but "paid".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kiosk.domain.receipts import Bilingual
from kiosk.domain.transaction import Transaction
from kiosk.domain.txn_receipts import TxnContext
from kiosk.errors import Unreachable
from kiosk.ports import PaymentStatus, RedemptionState, StoreServer
from kiosk.services.txn_messages import MSG_ISSUED, MSG_PAY_CANCELLED, MSG_PAY_EXPIRED
from kiosk.services.txn_steps import Progress, ProgressFn

__all__ = ["PaymentWait"]

log = logging.getLogger(__name__)


class PaymentWait:
    """Waits for the cash part of one held transaction at a time; see the module docstring."""

    def __init__(
        self, server: StoreServer, clock: Callable[[], float], *, timeout_s: float,
        poll_interval_s: float,
    ) -> None:  # fmt: skip
        self.server = server
        self.clock = clock
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """The member tapped cancel on the payment screen (any thread)."""
        self._cancel.set()

    def reset(self) -> None:
        """A new transaction starts: a cancel tapped for an earlier one does not count."""
        self._cancel.clear()

    def wait(
        self, txn: Transaction, ctx: TxnContext, progress: ProgressFn
    ) -> tuple[bool, str, Bilingual]:
        """Poll the server until the cash part is paid, cancelled, expired or timed out."""
        deadline = self.clock() + self.timeout_s
        while True:
            left = deadline - self.clock()
            if self._cancel.is_set():
                return False, "payment_cancelled", MSG_PAY_CANCELLED
            if left <= 0:
                return False, "payment_timeout", MSG_PAY_EXPIRED
            progress(Progress(txn.txn_id, txn.state, ctx.pay_url, txn.cash_cents, left))
            try:
                r = self.server.get_redemption(txn.txn_id)
            except Unreachable as exc:
                log.warning("txn %s: payment poll failed, polling on: %s", txn.txn_id, exc)
            else:
                status = r.payment.status if r.payment is not None else None
                held = r.state is RedemptionState.HELD
                if status is PaymentStatus.PAID and held:
                    return True, "", MSG_ISSUED
                if not held or status in _PAYMENT_ENDED:
                    return False, "payment_expired", MSG_PAY_EXPIRED
            if self._cancel.wait(min(self.poll_interval_s, max(left, 0))):
                return False, "payment_cancelled", MSG_PAY_CANCELLED


_PAYMENT_ENDED = frozenset({PaymentStatus.CANCELLED, PaymentStatus.EXPIRED, PaymentStatus.REFUNDED})
