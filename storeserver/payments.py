"""The cash part of a points+cash purchase: a payment provider interface and a simulated one.

A real provider (WeChat Pay, Alipay) implements ``PaymentProvider``: it makes the pay URL the
kiosk shows as a QR code, checks the signature of its own "paid" notifications and is told to
refund when a paid redemption is voided. Payment state lives in the ``payments`` table either
way; a verified notification marks it paid.

A store runs with a provider or with none (``Payments.available`` False): then a redemption
with a cash part is refused (409 ``payments_unavailable``). The simulated provider lets anyone
mark a payment paid, so it is never a default: the demo and tests pass it explicitly.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from .clock import Clock, iso, parse_iso
from .db import Database
from .errors import ApiError, Conflict, NotFound, shown

log = logging.getLogger(__name__)

DEFAULT_PAYMENT_EXPIRY_S = 300


@dataclass(frozen=True)
class Payment:
    id: str
    txn_id: str
    amount_cents: int
    status: str
    pay_url: str
    expires_at: str
    paid_at: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Payment:
        return cls(
            row["id"],
            row["txn_id"],
            row["amount_cents"],
            row["status"],
            row["pay_url"],
            row["expires_at"],
            row["paid_at"],
        )

    def view(self) -> dict:
        return {
            "id": self.id,
            "amount_cents": self.amount_cents,
            "status": self.status,
            "pay_url": self.pay_url,
            "expires_at": self.expires_at,
            "paid_at": self.paid_at,
        }


class PaymentsUnavailable(Conflict):
    """A cash part on a store that runs without a payment provider."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            "payments_unavailable",
            message
            or "this store takes no cash payments (no payment provider configured): choose an "
            "item without a cash part, or configure [payments] provider on the store server",
        )


class BadNotification(ApiError):
    """A provider notification whose signature or body does not verify: nothing is changed."""

    status = 401


@dataclass(frozen=True)
class PaymentNotification:
    """What a verified provider notification says: this payment of ours was paid."""

    payment_id: str
    amount_cents: int | None = None  # as the provider reports it (None: not reported)
    provider_ref: str | None = None  # the provider's own transaction id


class PaymentProvider(Protocol):
    """A payment service (WeChat Pay, Alipay, the simulated one)."""

    name: str

    def pay_url(self, payment_id: str, amount_cents: int, base_url: str) -> str:
        """Where the member's phone pays (shown by the kiosk as a QR code); ``base_url`` is
        the store server's public URL, for the provider's callback."""
        ...

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> PaymentNotification:
        """Check a "paid" notification's signature and body; ``BadNotification`` if either
        does not verify. A real provider checks its own signature here (a later issue)."""
        ...

    def refund(self, payment_id: str, amount_cents: int) -> None:
        """Return a captured payment to the member."""
        ...


class SimulatedPaymentProvider:
    """Pays when ``POST /v1/payments/{id}/simulate-paid`` is called (demo and tests only:
    anyone who can reach the server can mark a payment paid)."""

    name = "simulated"

    def pay_url(self, payment_id: str, amount_cents: int, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/pay/{payment_id}"

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> PaymentNotification:
        """The simulated "notification" is ``{"payment_id": ...}`` and carries no signature."""
        try:
            payment_id = json.loads(body)["payment_id"]
        except (ValueError, KeyError, TypeError):
            raise BadNotification(
                "bad_notification", 'a simulated notification is {"payment_id": "pay_..."}'
            ) from None
        if not isinstance(payment_id, str):
            raise BadNotification("bad_notification", "payment_id must be a string")
        return PaymentNotification(payment_id)

    def refund(self, payment_id: str, amount_cents: int) -> None:
        log.info("simulated refund of payment %s (%d cents)", payment_id, amount_cents)


class Payments:
    """Payment records and their life: pending -> paid | cancelled | expired; paid -> refunded."""

    def __init__(
        self,
        db: Database,
        provider: PaymentProvider | None,
        clock: Clock,
        expiry_s: int = DEFAULT_PAYMENT_EXPIRY_S,
    ) -> None:
        self.db = db
        self.provider = provider
        self.clock = clock
        self.expiry_s = expiry_s

    @property
    def available(self) -> bool:
        """Whether this store takes cash parts at all."""
        return self.provider is not None

    def check_available(self, base_url: str | None) -> None:
        """Refuse a cash part before anything is held: no provider, or no URL to pay at."""
        if self.provider is None:
            raise PaymentsUnavailable()
        if not base_url:
            raise PaymentsUnavailable(
                "the store server has no public URL for pay links: set [server] public_url "
                "(or --public-url) on the store server"
            )

    def create(
        self, conn: sqlite3.Connection, txn_id: str, amount_cents: int, base_url: str | None
    ) -> Payment:
        self.check_available(base_url)
        assert self.provider is not None and base_url  # checked above (for the type checker)
        payment_id = "pay_" + secrets.token_hex(8)
        now = self.clock.now()
        expires = now + dt.timedelta(seconds=self.expiry_s)
        url = self.provider.pay_url(payment_id, amount_cents, base_url)
        conn.execute(
            "INSERT INTO payments(id, txn_id, amount_cents, status, pay_url, created_at, expires_at) "
            "VALUES (?,?,?,?,?,?,?)",
            (payment_id, txn_id, amount_cents, "pending", url, iso(now), iso(expires)),
        )
        return self.get(conn, payment_id)

    def get(self, conn: sqlite3.Connection, payment_id: str) -> Payment:
        row = conn.execute("SELECT * FROM payments WHERE id = ?", (payment_id,)).fetchone()
        if row is None:
            raise NotFound("unknown_payment", f"no payment with id {shown(payment_id)}")
        return Payment.from_row(row)

    def mark_paid(self, conn: sqlite3.Connection, payment_id: str) -> Payment:
        payment = self.get(conn, payment_id)
        if payment.status == "paid":
            return payment
        if payment.status != "pending":
            raise Conflict("payment_not_pending", f"payment {payment_id} is {payment.status}")
        if parse_iso(payment.expires_at) <= self.clock.now():
            raise Conflict("payment_expired", f"payment {payment_id} has expired")
        conn.execute(
            "UPDATE payments SET status = 'paid', paid_at = ? WHERE id = ?",
            (iso(self.clock.now()), payment_id),
        )
        return self.get(conn, payment_id)

    def notified(
        self, conn: sqlite3.Connection, headers: Mapping[str, str], body: bytes
    ) -> Payment:
        """A provider's "paid" notification: verified by the provider, then marks it paid."""
        if self.provider is None:
            raise PaymentsUnavailable()
        note = self.provider.verify_notification(headers, body)
        payment = self.get(conn, note.payment_id)
        if note.amount_cents is not None and note.amount_cents != payment.amount_cents:
            raise BadNotification(
                "amount_mismatch",
                f"payment {payment.id} is {payment.amount_cents} cents, the provider reports "
                f"{note.amount_cents}: check the provider's records",
            )
        return self.mark_paid(conn, payment.id)

    def settle_on_void(
        self, conn: sqlite3.Connection, payment_id: str, expired: bool = False
    ) -> None:
        """A voided redemption cancels a pending payment and refunds a paid one."""
        payment = self.get(conn, payment_id)
        if payment.status == "pending":
            status = "expired" if expired else "cancelled"
            conn.execute("UPDATE payments SET status = ? WHERE id = ?", (status, payment_id))
        elif payment.status == "paid":
            conn.execute("UPDATE payments SET status = 'refunded' WHERE id = ?", (payment_id,))
            # the refund is an external effect: ask the provider only once the void has committed
            provider = self.provider
            if provider is None:  # paid under a provider since removed from the configuration
                log.error("payment %s needs a refund but no provider is configured", payment_id)
                return
            self.db.after_commit(lambda: provider.refund(payment_id, payment.amount_cents))

    def due_for_expiry(self, conn: sqlite3.Connection) -> list[str]:
        rows = conn.execute(
            "SELECT txn_id FROM payments WHERE status = 'pending' AND expires_at <= ?",
            (iso(self.clock.now()),),
        ).fetchall()
        return [r["txn_id"] for r in rows]
