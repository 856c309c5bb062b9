"""Property-based tests of the points ledger, holds, payments and spins (hypothesis state machine).

A ``Store`` on a temp SQLite file with a ``ManualClock``, seeded with the demo data, is driven
in-process by random sequences of earns, redemption holds, spins, captures, voids, payments,
clock moves (so holds, payments and lots expire) and replays of earlier requests. After every
step the books are checked for every member (see ``LedgerMachine.books_balance``); refusals
(``ApiError``) are fine but must change nothing; a replayed create or spin must return exactly
its first answer and change no table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from storeserver import demo, members, spins
from storeserver.clock import ManualClock
from storeserver.errors import ApiError
from storeserver.ledger import Ledger
from storeserver.notify import RecordingNotifier
from storeserver.payments import SimulatedPaymentProvider
from storeserver.store import Store
from tests.storeserver.conftest import KIOSK, OTHER_KIOSK, db_snapshot, open_session

BASE_URL = "http://store.test/"
WHEEL_ID = demo.WHEEL[0]
DAILY_LIMIT = demo.WHEEL[4]  # (id, name_zh, name_en, cost_points, daily_limit)
KIOSKS = [KIOSK, OTHER_KIOSK]
MEMBER_IDS = [m[0] for m in demo.MEMBERS]
PRICES = {item[0]: (item[4], item[5]) for item in demo.ITEMS}  # sku -> (points, cash_cents)

# (sku, compartment): every right pair of the demo lockers, plus wrong ones the server must refuse
GOOD_PICKS = [(sku, number) for number, (sku, _) in demo.COMPARTMENTS.items()] + [("CPN-10", None)]
BAD_PICKS = [
    ("GIFT-MUG", None),  # a gift needs a compartment
    ("CPN-10", 1),  # a coupon must not name one
    ("GIFT-TEA", 2),  # compartment 2 holds totes
    ("GIFT-TOTE", 42),  # no such compartment
    ("NO-SUCH-SKU", None),
]
PICKS = st.sampled_from(GOOD_PICKS * 3 + BAD_PICKS)  # mostly right
CASH_SKUS = [item[0] for item in demo.ITEMS if item[5] > 0]  # points + cash items
CASH_PICKS = [(sku, number) for sku, number in GOOD_PICKS if sku in CASH_SKUS]

# ~1 ms a step: this runs in seconds, far below the ~60 s CI budget
SETTINGS = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass
class Request:
    """One request as the kiosk sent it, and the server's first successful answer (if any)."""

    op: str  # redeem | spin | capture | void
    kiosk: str
    txn_id: str
    body: dict
    first: dict | None = None
    session: str | None = None  # the member session a create or spin was sent with


class LedgerMachine(RuleBasedStateMachine):
    holds = Bundle("holds")  # creates and spins the server accepted
    finishes = Bundle("finishes")  # captures and voids, accepted or not

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="ledger-props-"))
        self.clock = ManualClock()
        self.store = Store(
            self.tmp / "store.db",
            clock=self.clock,
            notifier=RecordingNotifier(),
            provider=SimulatedPaymentProvider(),
        )
        demo.seed(self.store, KIOSKS)
        self.refused: list[Request] = []  # creates and spins refused when first sent
        self.sessions: dict[tuple[str, str], tuple[str, dt.datetime]] = {}
        self.ids = 0
        self.commit_seed()
        conn = self.store.db.connection()
        # stock as seeded: what is missing later must be exactly what active holds reserved
        self.initial_compartments = {
            (c["kiosk_id"], c["number"]): c["stock"]
            for c in conn.execute("SELECT * FROM compartments")
        }
        self.initial_segments = {
            (s["wheel_id"], s["idx"]): s["stock"]
            for s in conn.execute("SELECT * FROM wheel_segments")
        }
        item_columns = [c["name"] for c in conn.execute("PRAGMA table_info(items)")]
        self.initial_items = {}  # store-wide stock of limited items, if the schema has it
        if "stock" in item_columns:
            self.initial_items = {
                i["sku"]: i["stock"] for i in conn.execute("SELECT sku, stock FROM items")
            }

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- helpers ---------------------------------------------------------------------------
    def new_id(self) -> str:
        """A txn id shaped like a uuid4 but deterministic, so hypothesis can replay and shrink."""
        self.ids += 1
        return str(uuid.UUID(int=self.ids, version=4))

    def commit_seed(self) -> None:
        """Fix the wheel seeds of today and tomorrow ahead of the server (a spin commits to
        tomorrow's with a random one), so that a run is deterministic: spins must land the same
        way when hypothesis replays it."""
        today = self.store.today()
        with self.store.db.transaction() as conn:
            for day in (today.isoformat(), (today + dt.timedelta(days=1)).isoformat()):
                seed = hashlib.sha256(f"props:{day}".encode()).digest()
                conn.execute(
                    "INSERT OR IGNORE INTO wheel_seeds(wheel_id, day, seed_hex, commitment) "
                    "VALUES (?,?,?,?)",
                    (WHEEL_ID, day, seed.hex(), hashlib.sha256(seed).hexdigest()),
                )

    def session(self, kiosk: str, member: str) -> str:
        """The member's session at this kiosk: their code scanned there (again once expired)."""
        token, expires = self.sessions.get((kiosk, member), ("", self.clock.now()))
        if expires <= self.clock.now():
            token = open_session(self.store, kiosk, member)
            expires = self.clock.now() + dt.timedelta(seconds=self.store.settings.member_session_s)
            self.sessions[(kiosk, member)] = (token, expires)
        return token

    def send(self, req: Request) -> dict:
        """Send a request in-process, as the API handler would; ApiError is a refusal."""
        r = self.store.redemptions
        if req.op == "redeem":
            return r.create(req.kiosk, req.body, BASE_URL, req.session)
        if req.op == "spin":
            return spins.spin(r, req.kiosk, req.body, req.session)
        if req.op == "capture":
            return r.capture(req.kiosk, req.txn_id)
        if req.op == "void":
            return r.void(req.kiosk, req.txn_id, req.body["reason"])
        raise AssertionError(req.op)

    def attempt(self, req: Request) -> dict | None:
        """Send; a refusal must leave every table as it was, but for expiries that were due
        anyway (a refused request still records them). Returns the answer or None."""
        self.sweep_due()
        before = db_snapshot(self.store)
        try:
            answer = self.send(req)
        except ApiError as exc:
            event(f"{req.op} refused: {exc.code}")
            assert db_snapshot(self.store) == before, f"refused {req.op} changed the database"
            return None
        event(f"{req.op} ok")
        if req.first is None:
            req.first = answer
        return answer

    def sweep_due(self) -> None:
        """Apply the expiries that are due, as the first write of any request would."""
        with self.store.db.transaction() as conn:
            self.store.redemptions.sweep(conn)

    @initialize(
        target=holds, member=st.sampled_from(["M0003", "M0004"]), kiosk=st.sampled_from(KIOSKS)
    )
    def first_spin(self, member: str, kiosk: str) -> Request:
        """Start with one hold, so rules that work on holds are enabled from the first step."""
        body = {"txn_id": self.new_id(), "member_id": member, "wheel_id": WHEEL_ID}
        req = Request("spin", kiosk, body["txn_id"], body, session=self.session(kiosk, member))
        assert self.attempt(req) is not None
        return req

    # ---- earning ---------------------------------------------------------------------------
    @rule(member=st.sampled_from(MEMBER_IDS), amount_cents=st.integers(1, 300_000))
    def earn_purchase(self, member: str, amount_cents: int) -> None:
        with self.store.db.transaction() as conn:
            members.earn_purchase(self.store.ledger, conn, member, amount_cents, self.new_id())

    @rule(
        member=st.sampled_from(MEMBER_IDS),
        points=st.integers(1, 3000),
        days=st.sampled_from([1, 2, 3, 4, 6, 10, 40, 365]),
    )
    def earn_lot(self, member: str, points: int, days: int) -> None:
        expires_on = self.store.today() + dt.timedelta(days=days)
        with self.store.db.transaction() as conn:
            self.store.ledger.earn(conn, member, points, "purchase", "props", expires_on=expires_on)

    # ---- holds and spins ---------------------------------------------------------------------
    @rule(
        target=holds,
        member=st.sampled_from(MEMBER_IDS),
        pick=PICKS,
        kiosk=st.sampled_from(KIOSKS),
        right_price=st.booleans() | st.just(True),
    )
    def create_hold(self, member: str, pick: tuple, kiosk: str, right_price: bool):
        return self._create(member, pick, kiosk, right_price)

    @rule(
        target=holds,
        member=st.sampled_from(["M0003", "M0004"]),  # can afford the points part
        pick=st.sampled_from(CASH_PICKS),
        kiosk=st.sampled_from(KIOSKS),
    )
    def create_cash_hold(self, member: str, pick: tuple, kiosk: str):
        return self._create(member, pick, kiosk, True)

    def _create(self, member: str, pick: tuple, kiosk: str, right_price: bool):
        sku, compartment = pick
        points, cash = PRICES.get(sku, (0, 0))
        body = {
            "txn_id": self.new_id(),
            "member_id": member,
            "sku": sku,
            "compartment": compartment,
            "points": points if right_price else points + 1,
            "cash_cents": cash,
        }
        session = self.session(kiosk, member)
        req = Request("redeem", kiosk, body["txn_id"], body, session=session)
        answer = self.attempt(req)
        if answer is None:
            self.refused.append(req)
            return multiple()
        assert answer["state"] == "held"
        assert (answer["points"], answer["cash_cents"]) == PRICES[sku]
        assert (answer["payment"] is not None) == (cash > 0)
        return req

    @rule(target=holds, member=st.sampled_from(MEMBER_IDS), kiosk=st.sampled_from(KIOSKS))
    def spin(self, member: str, kiosk: str):
        body = {"txn_id": self.new_id(), "member_id": member, "wheel_id": WHEEL_ID}
        req = Request("spin", kiosk, body["txn_id"], body, session=self.session(kiosk, member))
        answer = self.attempt(req)
        if answer is None:
            self.refused.append(req)
            return multiple()
        prize = answer["prize"]
        assert answer["state"] == "held"
        assert prize["segment_idx"] in [idx for idx, _ in prize["eligible"]]
        return req

    @rule(target=finishes, of=holds, own_kiosk=st.booleans() | st.just(True))
    def capture(self, of: Request, own_kiosk: bool) -> Request:
        kiosk = of.kiosk if own_kiosk else next(k for k in KIOSKS if k != of.kiosk)
        req = Request("capture", kiosk, of.txn_id, {})
        answer = self.attempt(req)
        if answer is not None:
            assert answer["state"] == "captured"
        return req

    @rule(
        target=finishes,
        of=holds,
        reason=st.sampled_from(
            ["door_jammed", "member_cancelled", "gift_not_dispensed: door_jammed"]
        ),
        own_kiosk=st.booleans() | st.just(True),
    )
    def void(self, of: Request, reason: str, own_kiosk: bool) -> Request:
        kiosk = of.kiosk if own_kiosk else next(k for k in KIOSKS if k != of.kiosk)
        req = Request("void", kiosk, of.txn_id, {"reason": reason})
        answer = self.attempt(req)
        if answer is not None:
            assert answer["state"] in ("voided", "expired")
            if of.op == "spin" and answer["state"] == "voided":  # the wheel's rule
                assert answer["prize"]["kind"] == "gift", answer
                assert answer["void_reason"].startswith("gift_not_dispensed"), answer
        return req

    @rule(of=holds)
    def mark_paid(self, of: Request) -> None:
        conn = self.store.db.connection()
        row = conn.execute(
            "SELECT payment_id FROM redemptions WHERE txn_id = ?", (of.txn_id,)
        ).fetchone()
        if row["payment_id"] is None:
            return
        before = db_snapshot(self.store)
        try:
            with self.store.db.transaction() as conn:
                # as the payment callback does: due expiries first, then the payment
                self.store.redemptions.sweep(conn)
                self.store.payments.mark_paid(conn, row["payment_id"])
        except ApiError as exc:
            event(f"mark_paid refused: {exc.code}")
            assert db_snapshot(self.store) == before
        else:
            event("mark_paid ok")

    # ---- replays -----------------------------------------------------------------------------
    @rule(req=holds | finishes)
    def replay(self, req: Request) -> None:
        """The same request again: a create or spin answers its first answer and changes nothing."""
        self.sweep_due()  # expiries due now are not the replay's doing
        before = db_snapshot(self.store)
        first = req.first
        answer = self.attempt(req)
        if first is None:
            return  # it was refused the first time: this was a new attempt
        if req.op in ("redeem", "spin"):
            assert answer == first, "a replayed create/spin must return exactly its first answer"
            assert db_snapshot(self.store) == before, "a replayed create/spin changed the database"
        else:
            assert answer is not None, f"a replayed {req.op} that succeeded before was refused"
            for key in ("txn_id", "state", "coupon_code", "void_reason"):
                assert answer[key] == first[key], key
            assert db_snapshot(self.store) == before, f"a replayed {req.op} changed the database"

    @precondition(lambda self: self.refused)
    @rule(data=st.data())
    def retry_refused(self, data: st.DataObject) -> None:
        """A refused create or spin sent again is a new attempt: it may succeed now."""
        req = data.draw(st.sampled_from(self.refused))
        req.session = self.session(req.kiosk, req.body["member_id"])  # scanned again
        if req.first is None and self.attempt(req) is not None:
            event(f"{req.op} retried ok")

    @rule(req=holds, change=st.sampled_from(["kiosk", "member"]))
    def reuse_txn_id(self, req: Request, change: str) -> None:
        """A different request under a used txn_id is refused with txn_id_reused."""
        body = dict(req.body)
        kiosk = req.kiosk
        if change == "kiosk":
            kiosk = next(k for k in KIOSKS if k != req.kiosk)
        else:
            body["member_id"] = next(m for m in MEMBER_IDS if m != body["member_id"])
        self.sweep_due()  # expiries due now are not the refusal's doing
        before = db_snapshot(self.store)
        with pytest.raises(ApiError) as refused:
            self.send(Request(req.op, kiosk, req.txn_id, body))
        assert refused.value.code == "txn_id_reused"
        assert db_snapshot(self.store) == before

    # ---- time --------------------------------------------------------------------------------
    @rule(minutes=st.sampled_from([1, 2, 3, 4, 6, 11]))
    def advance_minutes(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)
        self.commit_seed()

    @rule(days=st.integers(1, 4))
    def advance_days(self, days: int) -> None:
        self.clock.advance(days=days)
        self.commit_seed()

    # ---- invariants --------------------------------------------------------------------------
    @invariant()
    def books_balance(self) -> None:
        store = self.store
        today = store.today()
        with store.db.transaction() as conn:
            ids = [r["id"] for r in conn.execute("SELECT id FROM members")]
            for member in ids:
                store.ledger.sweep(conn, member)
        conn = store.db.connection()
        tiers = store.ledger.tiers(conn)
        allocated = Counter()
        for a in conn.execute("SELECT lot_id, amount FROM hold_allocations"):
            allocated[a["lot_id"]] += a["amount"]

        for member in ids:
            balance = store.ledger.balance(conn, member, today)
            lots = conn.execute("SELECT * FROM lots WHERE member_id = ?", (member,)).fetchall()
            live = {lot["id"] for lot in lots if dt.date.fromisoformat(lot["expires_on"]) > today}
            assert balance == sum(lot["remaining"] for lot in lots if lot["id"] in live), member
            assert balance >= 0
            changes = conn.execute(
                "SELECT delta, balance_after FROM points_changes WHERE member_id = ? ORDER BY id",
                (member,),
            ).fetchall()
            assert sum(c["delta"] for c in changes) == balance, f"{member}: changes do not add up"
            if changes:
                assert changes[-1]["balance_after"] == balance, f"{member}: last balance_after"
            for lot in lots:
                assert 0 <= lot["remaining"] <= lot["amount"], dict(lot)
                if lot["id"] in live:
                    # every point of a live lot is either left or held/spent by a redemption
                    assert lot["amount"] == lot["remaining"] + allocated[lot["id"]], dict(lot)
                else:
                    assert lot["remaining"] == 0, f"expired lot not swept: {dict(lot)}"
            m = store.ledger.member_row(conn, member)
            assert m["tier"] == [t for t in tiers if t.threshold <= m["lifetime_points"]][-1].name

        # stock: never negative, and what is missing is exactly what active holds reserved
        active_comp = Counter(
            (r["kiosk_id"], r["compartment"])
            for r in conn.execute(
                "SELECT kiosk_id, compartment FROM redemptions "
                "WHERE compartment IS NOT NULL AND state IN ('held', 'captured')"
            )
        )
        for c in conn.execute("SELECT * FROM compartments"):
            assert c["stock"] >= 0, dict(c)
            key = (c["kiosk_id"], c["number"])
            assert c["stock"] == self.initial_compartments[key] - active_comp[key], key
        active_prizes = Counter(
            (r["wheel_id"], r["segment_idx"])
            for r in conn.execute(
                "SELECT s.wheel_id, s.segment_idx FROM spins s "
                "JOIN redemptions r ON r.txn_id = s.txn_id WHERE r.state IN ('held', 'captured')"
            )
        )
        for s in conn.execute("SELECT * FROM wheel_segments"):
            key = (s["wheel_id"], s["idx"])
            if s["stock"] is not None:
                assert s["stock"] >= 0, dict(s)
                assert s["stock"] == self.initial_segments[key] - active_prizes[key], key
        active_items = Counter(
            r["sku"]
            for r in conn.execute(
                "SELECT sku FROM redemptions WHERE kind = 'redeem' AND compartment IS NULL "
                "AND state IN ('held', 'captured')"
            )
        )
        for item in conn.execute("SELECT * FROM items"):
            if self.initial_items.get(item["sku"]) is not None:  # a store-wide limited coupon
                assert item["stock"] >= 0, dict(item)
                assert item["stock"] == self.initial_items[item["sku"]] - active_items[item["sku"]]

        # holds: a held (or captured) redemption's points are exactly its allocations
        held = Counter()
        for a in conn.execute("SELECT txn_id, amount FROM hold_allocations"):
            held[a["txn_id"]] += a["amount"]
        txns = set()
        for r in conn.execute("SELECT * FROM redemptions"):
            txns.add(r["txn_id"])
            if r["state"] in ("held", "captured"):
                assert held[r["txn_id"]] == r["points"], dict(r)
            else:
                assert held[r["txn_id"]] == 0, f"released hold kept allocations: {dict(r)}"
            if r["payment_id"]:
                status = store.payments.get(conn, r["payment_id"]).status
                allowed = {
                    "held": {"pending", "paid"},
                    "captured": {"paid"},
                    "voided": {"cancelled", "expired", "refunded"},
                    "expired": {"cancelled", "expired", "refunded"},
                }[r["state"]]
                assert status in allowed, (r["state"], status)
        assert set(held) <= txns, "allocations without a redemption"

        # spins: never more spins drawn in a day than the daily limit, voided or expired too
        for r in conn.execute(
            "SELECT member_id, day, COUNT(*) AS n FROM spins GROUP BY member_id, day"
        ):
            assert r["n"] <= DAILY_LIMIT, dict(r)
        # a drawn spin is final: only a gift that was not dispensed is ever given back
        for r in conn.execute(
            "SELECT r.state, r.void_reason, r.compartment, g.prize_kind FROM spins s "
            "JOIN redemptions r ON r.txn_id = s.txn_id JOIN wheel_segments g "
            "ON g.wheel_id = s.wheel_id AND g.idx = s.segment_idx "
            "WHERE r.state IN ('voided', 'expired')"
        ):
            assert r["prize_kind"] == "gift" and r["compartment"] is not None, dict(r)
            if r["state"] == "voided":
                assert r["void_reason"].startswith("gift_not_dispensed"), dict(r)


TestLedgerProperties = LedgerMachine.TestCase
TestLedgerProperties.settings = SETTINGS


def _release_forgetting_lots(self: Ledger, conn, member_id: str, txn_id: str) -> int:
    """A broken release: records the refund but never puts the points back into their lots."""
    rows = conn.execute(
        "SELECT amount FROM hold_allocations WHERE txn_id = ?", (txn_id,)
    ).fetchall()
    conn.execute("DELETE FROM hold_allocations WHERE txn_id = ?", (txn_id,))
    total = sum(r["amount"] for r in rows)
    if total:
        self._change(conn, member_id, total, "refund", txn_id, self.clock.now())
    return self.balance(conn, member_id, self.today())


def test_invariants_catch_a_broken_release(monkeypatch) -> None:
    """The machine is not vacuous: a release that loses points is caught."""
    monkeypatch.setattr(Ledger, "release", _release_forgetting_lots)
    with pytest.raises(AssertionError):
        run_state_machine_as_test(
            LedgerMachine,
            settings=settings(
                SETTINGS, max_examples=100, phases=[Phase.generate], database=None, print_blob=False
            ),
        )
