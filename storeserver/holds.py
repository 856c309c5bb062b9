"""Redemption holds: reserve points and stock, capture after dispensing, void on failure.

Every call is idempotent by the kiosk's ``txn_id``: the same create again returns the first
answer; a different body under a used txn_id is 409 ``txn_id_reused``. A hold neither captured
nor voided expires and releases its points and stock; an unpaid cash part expires and voids it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import sqlite3
from collections.abc import Iterator

from . import alerts, catalog, member_sessions, wheel
from .clock import Clock, iso
from .db import Database
from .errors import ApiError, BadRequest, Conflict, NotFound, shown
from .ledger import Ledger
from .payments import Payments

log = logging.getLogger(__name__)

DEFAULT_HOLD_EXPIRY_S = 600


def request_hash(body: dict) -> str:
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


class Redemptions:
    """Holds, captures and voids of redemptions and spins."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        ledger: Ledger,
        payments: Payments,
        hold_expiry_s: int = DEFAULT_HOLD_EXPIRY_S,
    ) -> None:
        self.db = db
        self.clock = clock
        self.ledger = ledger
        self.payments = payments
        self.hold_expiry_s = hold_expiry_s

    @contextlib.contextmanager
    def operation(self) -> Iterator[sqlite3.Connection]:
        """One write: sweep what is due, then the request. A refusal (ApiError) undoes the
        request's own changes but keeps the sweep, so an expired hold is recorded as expired
        even when the answer is 409."""
        refused: ApiError | None = None
        with self.db.transaction() as conn:
            self.sweep(conn)
            conn.execute("SAVEPOINT operation")
            try:
                yield conn
            except ApiError as exc:
                conn.execute("ROLLBACK TO SAVEPOINT operation")
                refused = exc
            conn.execute("RELEASE SAVEPOINT operation")
        if refused is not None:
            raise refused

    # ---- create --------------------------------------------------------------------------
    def replay(self, conn: sqlite3.Connection, txn_id: str, body_hash: str) -> dict | None:
        """The first answer for this txn_id, or None if it is new; 409 if the body differs."""
        row = conn.execute(
            "SELECT request_sha256, first_response FROM redemptions WHERE txn_id = ?", (txn_id,)
        ).fetchone()
        if row is None:
            return None
        if row["request_sha256"] != body_hash:
            raise Conflict(
                "txn_id_reused", f"txn_id {txn_id} was already used for a different request"
            )
        return json.loads(row["first_response"])

    def create(self, kiosk_id: str, body: dict, base_url: str | None, session: str | None) -> dict:
        """Hold points (and stock, and a payment for the cash part) for one catalog item, for
        the member of ``session`` (member_sessions.py); ``base_url`` is the server's public URL
        for pay links (None: none configured). A replay of a request this kiosk made returns
        its first answer without the session: the hold exists already."""
        txn_id = body["txn_id"]
        body_hash = request_hash({"kiosk_id": kiosk_id, **body})
        with self.operation() as conn:
            if (first := self.replay(conn, txn_id, body_hash)) is not None:
                return first
            member_sessions.require(conn, self.clock.now(), kiosk_id, body["member_id"], session)
            item = catalog.item_row(conn, body["sku"])
            if body["points"] != item["points"] or body["cash_cents"] != item["cash_cents"]:
                raise Conflict(
                    "price_changed",
                    f"{item['sku']} costs {item['points']} points + {item['cash_cents']} cents now: refresh the catalog",
                )
            if item["cash_cents"] > 0:
                self.payments.check_available(base_url)
            compartment = body.get("compartment")
            if item["kind"] == "gift":
                if compartment is None:
                    raise BadRequest(
                        "compartment_required", f"gift {item['sku']} needs a compartment"
                    )
                catalog.take_compartment_stock(conn, kiosk_id, compartment, item["sku"])
            elif compartment is not None:
                raise BadRequest(
                    "no_compartment", f"{item['sku']} is a printed coupon: send compartment null"
                )
            else:
                catalog.take_item_stock(conn, item["sku"])
            self.ledger.allocate(conn, body["member_id"], item["points"], txn_id, "redeem")
            payment_id = None
            if item["cash_cents"] > 0:
                payment_id = self.payments.create(conn, txn_id, item["cash_cents"], base_url).id
            self.insert(
                conn,
                txn_id,
                body_hash,
                "redeem",
                kiosk_id,
                body["member_id"],
                item["sku"],
                compartment,
                item["points"],
                item["cash_cents"],
                payment_id=payment_id,
            )
            return self.first_response(conn, txn_id)

    def insert(
        self,
        conn: sqlite3.Connection,
        txn_id: str,
        body_hash: str,
        kind: str,
        kiosk_id: str,
        member_id: str,
        sku: str | None,
        compartment: int | None,
        points: int,
        cash_cents: int,
        payment_id: str | None = None,
        state: str = "held",
    ) -> None:
        now = self.clock.now()
        conn.execute(
            "INSERT INTO redemptions(txn_id, request_sha256, kind, kiosk_id, member_id, sku, compartment, "
            "points, cash_cents, state, created_at, expires_at, payment_id, first_response, seq) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?, '{}', "
            "(SELECT COALESCE(MAX(seq), 0) + 1 FROM redemptions))",
            (
                txn_id,
                body_hash,
                kind,
                kiosk_id,
                member_id,
                sku,
                compartment,
                points,
                cash_cents,
                state,
                iso(now),
                iso(now + dt.timedelta(seconds=self.hold_expiry_s)),
                payment_id,
            ),
        )

    def first_response(self, conn: sqlite3.Connection, txn_id: str) -> dict:
        view = self.view(conn, txn_id)
        conn.execute(
            "UPDATE redemptions SET first_response = ? WHERE txn_id = ?",
            (json.dumps(view, ensure_ascii=False), txn_id),
        )
        return view

    # ---- read ----------------------------------------------------------------------------
    def row(self, conn: sqlite3.Connection, txn_id: str) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM redemptions WHERE txn_id = ?", (txn_id,)).fetchone()
        if row is None:
            raise NotFound("unknown_txn", f"no redemption with txn_id {shown(txn_id)}")
        return row

    def view(self, conn: sqlite3.Connection, txn_id: str) -> dict:
        r = self.row(conn, txn_id)
        payment = self.payments.get(conn, r["payment_id"]).view() if r["payment_id"] else None
        prize = None
        if r["kind"] == "spin":
            spin = conn.execute("SELECT * FROM spins WHERE txn_id = ?", (txn_id,)).fetchone()
            seg = {s.idx: s for s in wheel.segments(conn, spin["wheel_id"])}[spin["segment_idx"]]
            prize = {
                "wheel_id": spin["wheel_id"],
                "segment_idx": seg.idx,
                "kind": seg.prize_kind,
                "label_zh": seg.label_zh,
                "label_en": seg.label_en,
                "points": seg.prize_points,
                "sku": seg.prize_sku,
                "coupon_value_cents": self._coupon_value(conn, seg.prize_kind, seg.prize_sku),
                "day": spin["day"],
                "eligible": json.loads(spin["eligible"]),
                "commitment": wheel.commitment(
                    wheel.seed_for(conn, spin["wheel_id"], dt.date.fromisoformat(spin["day"]))
                ),
            }
        return {
            "txn_id": r["txn_id"],
            "kind": r["kind"],
            "state": r["state"],
            "member_id": r["member_id"],
            "sku": r["sku"],
            "compartment": r["compartment"],
            "points": r["points"],
            "cash_cents": r["cash_cents"],
            "hold_expires_at": r["expires_at"],
            "hold_seq": r["seq"],
            "void_reason": r["void_reason"],
            "coupon_code": r["coupon_code"],
            "coupon_valid_until": self._coupon_valid_until(conn, r["coupon_code"]),
            "payment": payment,
            "prize": prize,
            "balance": self.ledger.balance(conn, r["member_id"], self.ledger.today()),
        }

    def get(self, kiosk_id: str, txn_id: str) -> dict:
        with self.operation() as conn:
            self._own(conn, kiosk_id, txn_id)
            return self.view(conn, txn_id)

    # ---- finish --------------------------------------------------------------------------
    def capture(self, kiosk_id: str, txn_id: str) -> dict:
        """Commit a hold after the door sensor saw the gift taken (or the coupon printed)."""
        with self.operation() as conn:
            r = self._own(conn, kiosk_id, txn_id)
            if r["state"] == "captured":
                return self.view(conn, txn_id)
            if r["state"] != "held":
                raise Conflict(
                    f"hold_{r['state']}", f"txn {txn_id} is {r['state']} and cannot be captured"
                )
            if r["payment_id"] and self.payments.get(conn, r["payment_id"]).status != "paid":
                raise Conflict("payment_pending", f"the cash part of txn {txn_id} is not paid yet")
            self._capture_row(conn, r)
            return self.view(conn, txn_id)

    def _capture_row(self, conn: sqlite3.Connection, r: sqlite3.Row) -> None:
        txn_id = r["txn_id"]
        coupon = None
        if r["kind"] == "redeem" and r["sku"]:
            item = catalog.item_row(conn, r["sku"])
            if item["kind"] == "coupon":
                coupon = catalog.issue_coupon(
                    conn, self.clock, txn_id, r["member_id"], item["coupon_value_cents"]
                )
        elif r["kind"] == "spin":
            coupon = self._award_prize(conn, r)
        conn.execute(
            "UPDATE redemptions SET state = 'captured', finished_at = ?, coupon_code = ? WHERE txn_id = ?",
            (iso(self.clock.now()), coupon, txn_id),
        )

    def void(self, kiosk_id: str, txn_id: str, reason: str) -> dict:
        """Release a hold: points back to their lots, stock back, payment cancelled or refunded."""
        with self.operation() as conn:
            r = self._own(conn, kiosk_id, txn_id)
            if r["state"] in ("voided", "expired"):
                return self.view(conn, txn_id)
            if r["state"] == "captured":
                raise Conflict(
                    "already_captured", f"txn {txn_id} was captured; it cannot be voided"
                )
            if r["kind"] == "spin":
                self._check_spin_void(conn, r, reason)
            self._release(conn, r, "voided", reason)
            if r["kind"] == "spin":
                unproven = reason.startswith(wheel.COMMITMENT_MISMATCH)
                alerts.record(
                    conn, self.clock, kiosk_id,
                    "spin_commitment_mismatch" if unproven else "spin_gift_not_dispensed",
                    {"txn_id": txn_id, "member_id": r["member_id"], "sku": r["sku"],
                     "compartment": r["compartment"], "reason": reason},
                )  # fmt: skip
            return self.view(conn, txn_id)

    def sweep(self, conn: sqlite3.Connection) -> None:
        """Expire unpaid payments and stale holds (runs at the start of every write)."""
        for txn_id in self.payments.due_for_expiry(conn):
            r = self.row(conn, txn_id)
            if r["state"] == "held":
                self._release(conn, r, "voided", "payment_expired")
        now = iso(self.clock.now())
        for r in conn.execute(
            "SELECT * FROM redemptions WHERE state = 'held' AND expires_at <= ?", (now,)
        ).fetchall():
            self._expire(conn, r)

    def _expire(self, conn: sqlite3.Connection, r: sqlite3.Row) -> None:
        """A stale hold releases its points and stock, except a spin: a drawn spin is final,
        so one without a door (points, coupon, nothing) is captured and the member keeps the
        prize; a gift nobody confirmed is released like a door failure, and staff are told."""
        if r["kind"] != "spin":
            self._release(conn, r, "expired", "hold_expired")
        elif r["compartment"] is None and self._captured_by_expiry(conn, r):
            log.info("txn %s: spin not captured in time: captured by expiry", r["txn_id"])
        else:
            self._release(conn, r, "expired", "hold_expired")
            alerts.record(
                conn, self.clock, r["kiosk_id"], "spin_gift_expired",
                {"txn_id": r["txn_id"], "member_id": r["member_id"], "sku": r["sku"],
                 "compartment": r["compartment"]},
            )  # fmt: skip

    # ---- internals -----------------------------------------------------------------------
    def _coupon_value(self, conn: sqlite3.Connection, kind: str, sku: str | None) -> int | None:
        if kind != "coupon" or not sku:
            return None
        # not item_row(): an item retired since the spin still names the coupon's value
        row = conn.execute("SELECT coupon_value_cents FROM items WHERE sku = ?", (sku,)).fetchone()
        return None if row is None else row["coupon_value_cents"]

    def _coupon_valid_until(self, conn: sqlite3.Connection, code: str | None) -> str | None:
        if code is None:
            return None
        row = conn.execute("SELECT issued_at FROM coupons WHERE code = ?", (code,)).fetchone()
        return catalog.coupon_valid_until(row["issued_at"], self.ledger.tz).isoformat()

    def _own(self, conn: sqlite3.Connection, kiosk_id: str, txn_id: str) -> sqlite3.Row:
        r = self.row(conn, txn_id)
        if r["kiosk_id"] != kiosk_id:
            raise NotFound(
                "unknown_txn", f"no redemption with txn_id {shown(txn_id)} for kiosk {kiosk_id}"
            )
        return r

    def _release(self, conn: sqlite3.Connection, r: sqlite3.Row, state: str, reason: str) -> None:
        self.ledger.release(conn, r["member_id"], r["txn_id"])
        if r["compartment"] is not None:
            catalog.return_compartment_stock(conn, r["kiosk_id"], r["compartment"])
        elif r["kind"] == "redeem" and r["sku"]:
            catalog.return_item_stock(conn, r["sku"])
        if r["kind"] == "spin":
            spin = conn.execute(
                "SELECT wheel_id, segment_idx FROM spins WHERE txn_id = ?", (r["txn_id"],)
            ).fetchone()
            wheel.return_prize_stock(conn, spin["wheel_id"], spin["segment_idx"])
        if r["payment_id"]:
            self.payments.settle_on_void(conn, r["payment_id"], expired=reason == "payment_expired")
        conn.execute(
            "UPDATE redemptions SET state = ?, finished_at = ?, void_reason = ? WHERE txn_id = ?",
            (state, iso(self.clock.now()), reason, r["txn_id"]),
        )

    def _captured_by_expiry(self, conn: sqlite3.Connection, r: sqlite3.Row) -> bool:
        """Capture a stale doorless spin; False when its prize cannot be awarded any more
        (a coupon item retired since), so the sweep never fails the request it runs in."""
        conn.execute("SAVEPOINT expiry_capture")
        try:
            self._capture_row(conn, r)
        except ApiError as exc:
            conn.execute("ROLLBACK TO SAVEPOINT expiry_capture")
            log.error("txn %s: stale spin cannot be captured (%s): released", r["txn_id"], exc)
            return False
        finally:
            conn.execute("RELEASE SAVEPOINT expiry_capture")
        return True

    def _check_spin_void(self, conn: sqlite3.Connection, r: sqlite3.Row, reason: str) -> None:
        row = conn.execute(
            "SELECT g.prize_kind, s.day FROM spins s JOIN wheel_segments g "
            "ON g.wheel_id = s.wheel_id AND g.idx = s.segment_idx WHERE s.txn_id = ?",
            (r["txn_id"],),
        ).fetchone()
        refusal = wheel.spin_void_refusal(row["prize_kind"], r["compartment"], reason, row["day"])
        if refusal is not None:
            raise Conflict("spin_not_voidable", f"spin {r['txn_id']} cannot be voided: {refusal}")

    def _award_prize(self, conn: sqlite3.Connection, r: sqlite3.Row) -> str | None:
        spin = conn.execute(
            "SELECT wheel_id, segment_idx FROM spins WHERE txn_id = ?", (r["txn_id"],)
        ).fetchone()
        seg = {s.idx: s for s in wheel.segments(conn, spin["wheel_id"])}[spin["segment_idx"]]
        if seg.prize_kind == "points" and seg.prize_points > 0:
            self.ledger.earn(conn, r["member_id"], seg.prize_points, "wheel_prize", r["txn_id"])
        elif seg.prize_kind == "coupon" and seg.prize_sku:
            item = catalog.item_row(conn, seg.prize_sku)
            return catalog.issue_coupon(
                conn, self.clock, r["txn_id"], r["member_id"], item["coupon_value_cents"]
            )
        return None
