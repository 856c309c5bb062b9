"""Points ledger: earn lots with their own expiry, spend soonest-expiring first, tiers, history.

Invariants (checked by tests/storeserver/test_ledger_properties.py):
- a member's balance is the sum of ``remaining`` over lots not yet expired;
- the sum of a member's points changes equals that balance;
- no lot, stock count or balance is ever negative.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

from .clock import Clock, iso
from .db import Database
from .errors import BadRequest, Conflict, NotFound, shown
from .notify import Notification, Notifier

DEFAULT_LOT_VALIDITY_DAYS = 365
REGISTRATION_BONUS = 100
REFERRAL_BONUS = 200
TOPUP_POINTS_PER_YUAN_X10 = 10  # top-ups of stored value earn 1 point per yuan
SYSTEM = "system"

# Who is making the points changes of this request: ``account:<id>`` or ``kiosk:<id>``, set by
# the API's role check (storeserver/api/auth.py) and copied into the request's worker thread.
current_actor: contextvars.ContextVar[str] = contextvars.ContextVar("actor", default=SYSTEM)


@contextlib.contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Attribute the points changes made inside to ``actor`` (jobs: expiry sweeps)."""
    token = current_actor.set(actor)
    try:
        yield
    finally:
        current_actor.reset(token)


@dataclass(frozen=True)
class Tier:
    name: str
    name_zh: str
    threshold: int
    points_per_yuan_x10: int

    @property
    def name_en(self) -> str:
        """The English name: the tier's code, title-cased (the tiers table has no English
        name column)."""
        return self.name.replace("_", " ").title()


class Ledger:
    """All points movements of all members; every method runs inside one DB transaction."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        notifier: Notifier,
        tz: dt.tzinfo,
        lot_validity_days: int = DEFAULT_LOT_VALIDITY_DAYS,
    ) -> None:
        self.db = db
        self.clock = clock
        self.notifier = notifier
        self.tz = tz
        self.lot_validity_days = lot_validity_days

    def today(self) -> dt.date:
        """The store's calendar day (lot expiry, daily limits and wheel seeds follow it)."""
        return self.clock.now().astimezone(self.tz).date()

    # ---- reads -------------------------------------------------------------------------
    def tiers(self, conn: sqlite3.Connection) -> list[Tier]:
        rows = conn.execute("SELECT * FROM tiers ORDER BY threshold").fetchall()
        return [
            Tier(r["name"], r["name_zh"], r["threshold"], r["points_per_yuan_x10"]) for r in rows
        ]

    def member_row(self, conn: sqlite3.Connection, member_id: str) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM members WHERE id = ?", (member_id,)).fetchone()
        if row is None:
            raise NotFound("unknown_member", f"no member with id {shown(member_id)}")
        return row

    def balance(self, conn: sqlite3.Connection, member_id: str, today: dt.date) -> int:
        row = conn.execute(
            "SELECT COALESCE(SUM(remaining), 0) AS b FROM lots WHERE member_id = ? AND expires_on > ?",
            (member_id, today.isoformat()),
        ).fetchone()
        return int(row["b"])

    # ---- expiry ------------------------------------------------------------------------
    def sweep(self, conn: sqlite3.Connection, member_id: str) -> None:
        """Record the expiry of lots whose date has come (idempotent)."""
        now = self.clock.now()
        today = self.today().isoformat()
        due = conn.execute(
            "SELECT id, remaining FROM lots WHERE member_id = ? AND expires_on <= ? AND remaining > 0",
            (member_id, today),
        ).fetchall()
        for lot in due:
            conn.execute("UPDATE lots SET remaining = 0 WHERE id = ?", (lot["id"],))
            self._change(
                conn, member_id, -lot["remaining"], "expire", f"lot:{lot['id']}", now, SYSTEM
            )

    # ---- movements -----------------------------------------------------------------------
    def earn(
        self,
        conn: sqlite3.Connection,
        member_id: str,
        points: int,
        kind: str,
        ref: str | None,
        expires_on: dt.date | None = None,
    ) -> int:
        """Add a lot; returns the new balance. Upgrades the tier when lifetime points cross it."""
        if points <= 0:
            raise BadRequest("invalid_amount", f"points to earn must be positive, got {points}")
        member = self.member_row(conn, member_id)
        self.sweep(conn, member_id)
        now = self.clock.now()
        expires_on = expires_on or (self.today() + dt.timedelta(days=self.lot_validity_days))
        if expires_on <= self.today():
            raise BadRequest("invalid_expiry", f"a lot expiring on {expires_on} would never count")
        conn.execute(
            "INSERT INTO lots(member_id, earned_at, expires_on, amount, remaining) VALUES (?,?,?,?,?)",
            (member_id, iso(now), expires_on.isoformat(), points, points),
        )
        lifetime = member["lifetime_points"] + points
        conn.execute("UPDATE members SET lifetime_points = ? WHERE id = ?", (lifetime, member_id))
        new_tier = [t for t in self.tiers(conn) if t.threshold <= lifetime][-1]
        old = {t.name: t.threshold for t in self.tiers(conn)}
        if new_tier.threshold > old.get(member["tier"], 0):
            conn.execute("UPDATE members SET tier = ? WHERE id = ?", (new_tier.name, member_id))
            self._notify(
                "tier_changed", member_id, now, {"from": member["tier"], "to": new_tier.name}
            )
        return self._change(conn, member_id, points, kind, ref, now)

    def allocate(
        self, conn: sqlite3.Connection, member_id: str, points: int, txn_id: str, kind: str
    ) -> int:
        """Take points for a hold from the soonest-expiring lots; returns the balance after."""
        self.member_row(conn, member_id)
        self.sweep(conn, member_id)
        now = self.clock.now()
        available = self.balance(conn, member_id, self.today())
        if points > available:
            raise Conflict("insufficient_points", f"member has {available} points, {points} needed")
        if points == 0:
            return available
        lots = conn.execute(
            "SELECT id, remaining FROM lots WHERE member_id = ? AND expires_on > ? AND remaining > 0 "
            "ORDER BY expires_on, id",
            (member_id, self.today().isoformat()),
        ).fetchall()
        left = points
        for lot in lots:
            take = min(left, lot["remaining"])
            conn.execute(
                "UPDATE lots SET remaining = remaining - ? WHERE id = ?", (take, lot["id"])
            )
            conn.execute(
                "INSERT INTO hold_allocations(txn_id, lot_id, amount) VALUES (?,?,?)",
                (txn_id, lot["id"], take),
            )
            left -= take
            if left == 0:
                break
        return self._change(conn, member_id, -points, kind, txn_id, now)

    def release(self, conn: sqlite3.Connection, member_id: str, txn_id: str) -> int:
        """Give a hold's points back to the lots they came from (expired ones then expire)."""
        rows = conn.execute(
            "SELECT lot_id, amount FROM hold_allocations WHERE txn_id = ?", (txn_id,)
        ).fetchall()
        now = self.clock.now()
        total = sum(r["amount"] for r in rows)
        for r in rows:
            conn.execute(
                "UPDATE lots SET remaining = remaining + ? WHERE id = ?", (r["amount"], r["lot_id"])
            )
        conn.execute("DELETE FROM hold_allocations WHERE txn_id = ?", (txn_id,))
        if total:
            self._change(conn, member_id, total, "refund", txn_id, now)
        self.sweep(conn, member_id)
        return self.balance(conn, member_id, self.today())

    def recent_changes(
        self, conn: sqlite3.Connection, member_id: str, limit: int = 10
    ) -> list[dict]:
        rows = conn.execute(
            "SELECT at, delta, kind, ref, balance_after FROM points_changes "
            "WHERE member_id = ? ORDER BY id DESC LIMIT ?",
            (member_id, limit),
        ).fetchall()
        return [dict(r) for r in rows]

    # ---- internals -----------------------------------------------------------------------
    def _change(
        self,
        conn: sqlite3.Connection,
        member_id: str,
        delta: int,
        kind: str,
        ref: str | None,
        now: dt.datetime,
        actor: str | None = None,
    ) -> int:
        after = self.balance(conn, member_id, self.today())
        conn.execute(
            "INSERT INTO points_changes(member_id, at, delta, kind, ref, balance_after, actor) "
            "VALUES (?,?,?,?,?,?,?)",
            (member_id, iso(now), delta, kind, ref, after, actor or current_actor.get()),
        )
        self._notify(
            "points_changed",
            member_id,
            now,
            {"delta": delta, "kind": kind, "ref": ref, "balance": after},
        )
        return after

    def _notify(self, kind: str, member_id: str, now: dt.datetime, data: dict) -> None:
        note = Notification(kind=kind, member_id=member_id, at=iso(now), data=data)
        self.db.after_commit(lambda: self.notifier.send(note))
