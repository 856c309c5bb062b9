"""The cash part of a points+cash purchase: a payment provider interface and a simulated one.

A real provider (WeChat Pay, Alipay) implements ``PaymentProvider``: it makes the pay URL the
kiosk shows as a QR code and is told to refund when a paid redemption is voided. Payment
state lives in the ``payments`` table either way; the provider's callback marks it paid.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import sqlite3
from dataclasses import dataclass
from typing import Protocol

from .clock import Clock, iso, parse_iso
from .db import Database
from .errors import Conflict, NotFound, shown

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


class PaymentProvider(Protocol):
    def pay_url(self, payment_id: str, amount_cents: int, base_url: str) -> str:
        """Where the member's phone pays (shown by the kiosk as a QR code)."""
        ...

    def refund(self, payment_id: str, amount_cents: int) -> None:
        """Return a captured payment to the member."""
        ...


class SimulatedPaymentProvider:
    """Pays when ``POST /v1/payments/{id}/simulate-paid`` is called (demo and tests)."""

    def pay_url(self, payment_id: str, amount_cents: int, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/pay/{payment_id}"

    def refund(self, payment_id: str, amount_cents: int) -> None:
        log.info("simulated refund of payment %s (%d cents)", payment_id, amount_cents)


class Payments:
    """Payment records and their life: pending -> paid | cancelled | expired; paid -> refunded."""

    def __init__(
        self,
        db: Database,
        provider: PaymentProvider,
        clock: Clock,
        expiry_s: int = DEFAULT_PAYMENT_EXPIRY_S,
    ) -> None:
        self.db = db
        self.provider = provider
        self.clock = clock
        self.expiry_s = expiry_s

    def create(
        self, conn: sqlite3.Connection, txn_id: str, amount_cents: int, base_url: str
    ) -> Payment:
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
            self.db.after_commit(lambda: self.provider.refund(payment_id, payment.amount_cents))

    def due_for_expiry(self, conn: sqlite3.Connection) -> list[str]:
        rows = conn.execute(
            "SELECT txn_id FROM payments WHERE status = 'pending' AND expires_at <= ?",
            (iso(self.clock.now()),),
        ).fetchall()
        return [r["txn_id"] for r in rows]
