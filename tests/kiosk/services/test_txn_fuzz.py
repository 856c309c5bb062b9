"""Hypothesis over what a store server can answer: whatever comes back (odd states, missing
prizes, wrong balances, refusals and outages at any call), the engine ends in a result or a
KioskError, never pulses a door without a hold, pulses at most once, and leaves a journal
that recovery can settle."""

from __future__ import annotations

import itertools
import zoneinfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.domain.offline import OfflineLimits
from kiosk.domain.txn_receipts import StoreInfo
from kiosk.domain.wheel import Wheel
from kiosk.errors import KioskError, Rejected, Unreachable
from kiosk.ports import DoorJammed, Opened, PaperState, PrinterStatus, Redemption
from kiosk.services.compartment_flags import CompartmentFlags
from kiosk.services.kiosk_lock import KioskLock
from kiosk.services.receipt_queue import ReceiptQueue
from kiosk.services.transactions import Member, TransactionEngine
from kiosk.storage.journal import Journal
from kiosk.storage.outbox import Outbox
from kiosk.sync import parse

from .rig import COUPON, EARBUDS, MUG, Link

texts = st.text(max_size=12)
maybe_int = st.one_of(st.none(), st.integers(-10, 10**6))
payments = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"id": texts, "pay_url": texts, "amount_cents": maybe_int},
        optional={"status": st.sampled_from(["pending", "paid", "cancelled", "expired", "?"])},
    ),
)
prizes = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "wheel_id": texts,
            "segment_idx": st.one_of(st.integers(-2, 9), texts),
            "kind": st.sampled_from(["none", "points", "coupon", "gift", "bogus"]),
            "label_zh": texts,
            "label_en": texts,
            "points": st.one_of(st.integers(-5, 500), texts),
            "day": st.sampled_from(["2026-11-28", "yesterday", ""]),
            # the wheel's (below), another (a draw the kiosk cannot prove), or garbage
            "commitment": st.sampled_from(["0" * 64, "1" * 64, "zz"]),
        }
    ),
)


WHEEL = Wheel("LUCKY", "幸运转盘", "Lucky wheel", 100, 3, (), commitments={"2026-11-28": "0" * 64})


@st.composite
def answers(draw, txn_id: str, points: int):
    """An answer as JSON; the client parses it (kiosk/sync/parse.py) or calls it garbage."""
    return dict(
        txn_id=txn_id,
        kind=draw(st.sampled_from(["redeem", "spin"])),
        state=draw(st.sampled_from(["held", "captured", "voided", "expired", "weird"])),
        member_id="M0004",
        sku=draw(st.one_of(st.none(), texts)),
        compartment=draw(st.one_of(st.none(), st.integers(0, 8))),
        points=draw(st.sampled_from([points, points + 1, 0])),
        cash_cents=0,
        hold_expires_at=None,
        void_reason=None,
        coupon_code=draw(st.one_of(st.none(), st.just("CPN-ABC"), texts)),
        payment=draw(payments),
        prize=draw(prizes),
        balance=draw(maybe_int),
        coupon_valid_until=draw(st.sampled_from([None, "2026-12-28", "soon"])),
    )


FAILURES = st.sampled_from(
    [
        None,
        None,
        None,
        Unreachable("store server did not answer"),
        Rejected(409, "conflict", "no"),
        Rejected(404, "unknown_txn", "no such txn"),
        Rejected(422, "invalid", "bad"),
    ]
)


class FuzzServer:
    """A StoreServer whose every answer is drawn by hypothesis."""

    def __init__(self, data) -> None:
        self.data = data

    def _answer(self, txn_id: str, points: int) -> Redemption:
        failure = self.data.draw(FAILURES)
        if failure is not None:
            raise failure
        try:
            return parse.redemption(self.data.draw(answers(txn_id, points)))
        except parse.ShapeError as exc:
            raise parse.BadResponse(f"garbage: {exc}") from None

    def create_redemption(self, txn_id, member_id, sku, points, **kw):
        return self._answer(txn_id, points)

    def spin(self, txn_id, member_id, wheel_id, **kw):
        return self._answer(txn_id, 100)

    def get_redemption(self, txn_id):
        return self._answer(txn_id, 0)

    def capture(self, txn_id):
        return self._answer(txn_id, 0)

    def void(self, txn_id, reason):
        return self._answer(txn_id, 0)


class CountingLocker:
    def __init__(self, data) -> None:
        self.data, self.pulses = data, []

    def open(self, number):
        self.pulses.append(number)
        return self.data.draw(st.sampled_from([Opened(number, 0.2), DoorJammed(number, 5.0)]))


class PaperTray:
    """An in-memory ReceiptPrinter (the pty printer is exercised by the integration tests)."""

    def __init__(self) -> None:
        self.printed = []

    def status(self):
        return PrinterStatus(True, PaperState.OK)

    def print_receipt(self, receipt):
        self.printed.append(receipt)

    def close(self):
        pass


counter = itertools.count()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), flow=st.sampled_from(["gift", "coupon", "cash", "spin"]))
def test_any_server_answer_ends_in_a_result_or_a_kiosk_error(tmp_path_factory, data, flow):
    folder = tmp_path_factory.mktemp(f"fuzz{next(counter)}")
    journal = Journal.open(folder)
    locker = CountingLocker(data)
    server = FuzzServer(data)
    outbox = Outbox(journal)
    engine = TransactionEngine(
        journal=journal, server=server, locker=locker,
        receipts=ReceiptQueue(journal, PaperTray()), outbox=outbox,
        store=StoreInfo("kiosk-01", "店", "Store", zoneinfo.ZoneInfo("Asia/Shanghai")),
        lock=KioskLock(), flags=CompartmentFlags(journal, outbox), connectivity=Link(), offline_limits=OfflineLimits(500, 1000, 8),
        payment_timeout_s=0.05, poll_interval_s=0.01,
    )  # fmt: skip
    # the fake server takes any session: its answers, not its checks, are under test
    who = Member("M0004", "M0**4", 10**6, session="ms_fuzz-session-token")
    try:
        try:
            if flow == "spin":
                engine.spin(who, WHEEL)
            else:
                engine.redeem(who, {"gift": MUG, "coupon": COUPON, "cash": EARBUDS}[flow])
        except KioskError:
            pass
        assert len(locker.pulses) <= 1
        (record,) = journal.all("txn").values()
        if locker.pulses:
            assert any(state == "HELD" for state, _ in record["history"])
        pulses = len(locker.pulses)
        for _ in range(3):  # recovery under the same odd server never raises, never pulses
            engine.settle()
        assert len(locker.pulses) == pulses
    finally:
        journal.close()
