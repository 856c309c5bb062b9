"""The transaction engine against the real store server on loopback, the locker simulator and
the virtual printer: every flow, its failures, and what the member, the ledger and the locker
end up with."""

from __future__ import annotations

import hashlib
import logging
import threading
import time

import pytest

from kiosk.domain.receipts import PrizeKind
from kiosk.domain.transaction import TxnState
from kiosk.errors import Unreachable
from kiosk.platform.logctx import TxnFilter
from kiosk.ports import DoorState, PaperState
from kiosk.services.txn_steps import TXN_TABLE, Outcome, TransactionRefused

from .rig import COUPON, COUPON_PRIZE, EARBUDS, MUG, TOTE, TOTE_PRIZE, pay_when_shown


def flat(text: str) -> str:
    """Receipt text without line wraps and spaces (ids and amounts wrap at 32 columns)."""
    return "".join(text.split())


def states(kiosk, txn_id):
    return [s for s, _ in kiosk.engine.steps.load(txn_id)[0].history]


def test_redeem_dispenses_once_charges_once_and_prints_the_receipt(server, kiosk):
    seen = []
    result = kiosk.engine.redeem(kiosk.member("M0002"), MUG, seen.append)
    assert result.outcome is Outcome.DISPENSED and result.printed
    txn_id = result.txn.txn_id
    assert server.balance("M0002") == 2700 - 800
    assert server.redemptions()[txn_id] == "captured"
    assert kiosk.pulses(1) == 1 and server.stock(1) == 2
    S = TxnState
    expected = [S.NEW, S.HELD, S.DOOR_OPENING, S.DISPENSED, S.CAPTURED, S.PRINTED, S.DONE]
    assert states(kiosk, txn_id) == expected
    assert [p.state for p in seen] == expected[1:]
    (paper,) = kiosk.printer.wait_for_receipts(1)
    assert (
        txn_id in flat(paper.text) and "保温杯" in flat(paper.text) and "1,900" in flat(paper.text)
    )


def test_a_coupon_prints_its_code_and_last_valid_day(server, kiosk):
    result = kiosk.engine.redeem(kiosk.member("M0002"), COUPON)
    assert result.outcome is Outcome.ISSUED
    assert result.ctx.coupon_code.startswith("CPN-") and result.ctx.coupon_valid_until
    (paper,) = kiosk.printer.wait_for_receipts(1)
    assert result.ctx.coupon_code in flat(paper.text) and result.ctx.coupon_valid_until in flat(
        paper.text
    )
    assert sum(kiosk.pulses(n) for n in range(1, 7)) == 0
    assert server.balance("M0002") == 2200


def test_a_done_transaction_keeps_no_coupon_code_in_clear(server, kiosk):
    result = kiosk.engine.redeem(kiosk.member("M0002"), COUPON)
    code = result.ctx.coupon_code
    kiosk.printer.wait_for_receipts(1)
    ctx = kiosk.journal.get(TXN_TABLE, result.txn.txn_id)["ctx"]
    assert ctx["coupon_code"] is None and ctx["coupon_code_last4"] == code[-4:]
    assert ctx["coupon_code_sha256"] == hashlib.sha256(code.encode()).hexdigest()
    kiosk.journal.compact()  # the log's earlier lines go into the snapshot
    on_disk = b"".join(p.read_bytes() for p in (kiosk.folder / "state").rglob("*") if p.is_file())
    assert code.encode() not in on_disk


def test_a_refused_hold_opens_nothing_and_takes_nothing(server, kiosk):
    result = kiosk.engine.redeem(kiosk.member("M0005"), MUG)  # 80 points
    assert result.outcome is Outcome.REFUSED and "points" in result.message.en
    assert result.txn.state is TxnState.VOIDED
    assert kiosk.pulses(1) == 0 and server.balance("M0005") == 80 and server.stock(1) == 3
    assert kiosk.printer.receipts == []


def test_a_jammed_door_returns_the_points_flags_the_compartment_and_prints_a_claim(server, kiosk):
    kiosk.sim.jam(1)
    result = kiosk.engine.redeem(kiosk.member("M0002"), MUG)
    assert result.outcome is Outcome.NEEDS_CHECK
    assert server.balance("M0002") == 2700 and server.stock(1) == 3
    assert server.redemptions()[result.txn.txn_id] == "voided"
    assert kiosk.pulses(1) == 1
    assert 1 in kiosk.flags.flagged()
    (voucher,) = kiosk.printer.wait_for_receipts(1)
    assert "staff" in flat(voucher.text) and result.txn.txn_id in flat(voucher.text)
    assert [e.kind for e in kiosk.outbox.pending(10)] == ["needs_check"]
    with pytest.raises(TransactionRefused) as refused:
        kiosk.engine.redeem(kiosk.member("M0002"), MUG)
    assert refused.value.code == "compartment_needs_check" and kiosk.pulses(1) == 1
    assert kiosk.flags.clear(1, "S0001")
    kiosk.sim.jam(1, False)
    assert kiosk.engine.redeem(kiosk.member("M0002"), MUG).outcome is Outcome.DISPENSED


def test_points_and_cash_paid_on_the_phone(server, kiosk):
    paid = pay_when_shown(server, kiosk)
    result = kiosk.engine.redeem(kiosk.member("M0003"), EARBUDS, paid.progress)
    assert paid.is_set() and result.outcome is Outcome.DISPENSED
    assert states(kiosk, result.txn.txn_id)[:4] == [
        TxnState.NEW, TxnState.HELD, TxnState.PAID, TxnState.DOOR_OPENING
    ]  # fmt: skip
    assert server.payment_of(result.txn.txn_id)["status"] == "paid"
    assert server.balance("M0003") == 6500 - 2000 and kiosk.pulses(4) == 1
    (paper,) = kiosk.printer.wait_for_receipts(1)
    assert "49.00" in flat(paper.text)


def test_points_and_cash_cancelled_by_the_member(server, kiosk):
    def progress(p):
        if p.pay_url:
            kiosk.engine.cancel_payment()

    result = kiosk.engine.redeem(kiosk.member("M0003"), EARBUDS, progress)
    assert result.outcome is Outcome.VOIDED and result.txn.void_reason == "payment_cancelled"
    assert server.payment_of(result.txn.txn_id)["status"] == "cancelled"
    assert server.balance("M0003") == 6500 and kiosk.pulses(4) == 0
    (voucher,) = kiosk.printer.wait_for_receipts(1)
    assert "2,000" in flat(voucher.text)


def test_points_and_cash_expired_at_the_server(server, kiosk):
    def progress(p):
        if p.pay_url:
            server.clock.advance(minutes=6)

    result = kiosk.engine.redeem(kiosk.member("M0003"), EARBUDS, progress)
    assert result.outcome is Outcome.VOIDED and result.txn.void_reason == "payment_expired"
    assert server.payment_of(result.txn.txn_id)["status"] == "expired"
    assert server.balance("M0003") == 6500 and kiosk.pulses(4) == 0


def test_points_and_cash_timing_out_on_the_kiosk_cancels_with_a_countdown(server, kiosk):
    kiosk.engine.payment.timeout_s = 0.3
    seen = []
    result = kiosk.engine.redeem(kiosk.member("M0003"), EARBUDS, seen.append)
    assert result.outcome is Outcome.VOIDED and result.txn.void_reason == "payment_timeout"
    countdown = [p.seconds_left for p in seen if p.pay_url]
    assert len(countdown) >= 2 and countdown == sorted(countdown, reverse=True)
    assert all(0 < left <= 0.3 for left in countdown)
    assert server.payment_of(result.txn.txn_id)["status"] == "cancelled"


def test_wheel_spins_match_the_server_and_print_the_fairness_proof(server, kiosk):
    results = []
    for _ in range(3):  # LUCKY: 100 points a spin, 3 a day
        result = kiosk.engine.spin(kiosk.member("M0004"), kiosk.wheel())
        results.append(result)
        for n in range(1, 7):
            if kiosk.sim.is_open(n):
                kiosk.sim.close_door(n)
    kinds = [r.ctx.prize.kind.value for r in results]
    for r in results:
        assert r.outcome in (Outcome.ISSUED, Outcome.DISPENSED), r
        assert server.redemptions()[r.txn.txn_id] == "captured"
        assert (r.txn.compartment is not None) == (r.ctx.prize.kind.value == "gift")
    won = sum(r.ctx.prize.points for r in results if r.ctx.prize.kind.value == "points")
    assert server.balance("M0004") == 23000 - 300 + won
    papers = kiosk.printer.wait_for_receipts(3 + kinds.count("coupon"))
    assert all(any(r.ctx.prize.commitment in flat(p.text) for p in papers) for r in results)
    refused = kiosk.engine.spin(kiosk.member("M0004"), kiosk.wheel())
    assert refused.outcome is Outcome.REFUSED and server.balance("M0004") == 23000 - 300 + won


def test_a_price_change_refuses_the_spin_before_the_draw(server, kiosk):
    who = kiosk.member("M0004")
    result = kiosk.engine.spin(who, kiosk.wheel(cost_points=90))
    assert result.outcome is Outcome.REFUSED and result.txn.void_reason == "refused:price_changed"
    assert server.balance("M0004") == 23000
    assert result.txn.txn_id not in server.redemptions()  # nothing drawn, nothing to void
    assert kiosk.client.wheel_info("LUCKY", "M0004", who.session).spins_left == 3


def test_a_spin_whose_answer_was_lost_is_kept_by_the_member_not_voided(server, kiosk):
    """The server drew the spin but the answer never reached the kiosk: the member saw no
    result, yet the draw is final. The spin waits at NEW; recovery asks the server and
    captures the prize (here 50 points), queueing the receipt for staff."""
    server.only_prize(1)  # 50 points
    real_spin = kiosk.client.spin

    def answer_lost(*args, **kwargs):
        real_spin(*args, **kwargs)
        raise Unreachable("the answer was lost on the way back")

    kiosk.client.spin = answer_lost
    result = kiosk.engine.spin(kiosk.member("M0004"), kiosk.wheel())
    kiosk.client.spin = real_spin
    txn_id = result.txn.txn_id
    assert result.outcome is Outcome.VOID_PENDING and result.txn.state is TxnState.NEW
    assert "drawn" in result.message.en
    assert server.redemptions()[txn_id] == "held"
    (settled,) = kiosk.engine.settle()
    assert (settled.before, settled.after) == (TxnState.NEW, TxnState.DONE)
    assert server.redemptions()[txn_id] == "captured"
    assert server.balance("M0004") == 23000 - 100 + 50
    assert len(kiosk.receipts) == 1  # nobody was there: queued for staff


def test_offline_redemption_within_limits_then_uploaded(server, kiosk):
    kiosk.link.cut()
    result = kiosk.engine.redeem(kiosk.member("M0001"), TOTE)
    assert result.outcome is Outcome.DISPENSED_UNCONFIRMED and result.printed
    assert kiosk.pulses(2) == 1 and server.balance("M0001") == 750
    (event,) = kiosk.outbox.pending(10)
    assert event.kind == "offline_redemption" and event.payload["txn_id"] == result.txn.txn_id
    (answer,) = kiosk.client.send_events([event])
    assert answer.status == "applied" and server.balance("M0001") == 450


def test_offline_limits_refuse_beyond_the_floor(server, kiosk):
    kiosk.link.cut()
    kiosk.engine.redeem(kiosk.member("M0003"), TOTE)  # 300 of the member's 500 a day
    kiosk.sim.close_door(2)
    with pytest.raises(TransactionRefused) as refused:
        kiosk.engine.redeem(kiosk.member("M0003"), TOTE)
    assert refused.value.code == "member_limit" and "200" in refused.value.message.en
    with pytest.raises(TransactionRefused) as no_spin:
        kiosk.engine.spin(kiosk.member("M0003"), kiosk.wheel())
    assert no_spin.value.code == "offline"
    with pytest.raises(TransactionRefused) as no_cash:
        kiosk.engine.redeem(kiosk.member("M0003"), EARBUDS)
    assert no_cash.value.code == "kind_not_offline"
    assert kiosk.pulses(2) == 1 and kiosk.pulses(4) == 0


def test_an_offline_spend_the_server_cannot_charge_is_a_conflict_for_staff(server, kiosk):
    kiosk.link.cut()
    kiosk.engine.redeem(kiosk.member("M0001", balance=750), TOTE)
    with server.store.db.transaction() as conn:  # spent elsewhere meanwhile
        server.store.ledger.allocate(conn, "M0001", 700, "till-elsewhere", "redeem")
    (event,) = kiosk.outbox.pending(10)
    (answer,) = kiosk.client.send_events([event])
    assert answer.status == "conflict"
    alerts = server.store.db.connection().execute("SELECT kind FROM alerts").fetchall()
    assert "offline_conflict" in [a["kind"] for a in alerts]


def test_a_second_tap_while_one_runs_is_refused_not_doubled(server, kiosk):
    kiosk.sim.set_open_delay(1, 0.3)
    first: list = []
    t = threading.Thread(
        target=lambda: first.append(kiosk.engine.redeem(kiosk.member("M0002"), MUG))
    )
    t.start()
    while not kiosk.journal.all("txn"):
        pass
    with pytest.raises(TransactionRefused) as busy:
        kiosk.engine.redeem(kiosk.member("M0002"), MUG)
    t.join()
    assert busy.value.code == "busy" and first[0].outcome is Outcome.DISPENSED
    assert kiosk.pulses(1) == 1 and server.balance("M0002") == 1900


def test_a_tap_during_background_recovery_waits_for_it_instead_of_being_refused(
    server, kiosk, monkeypatch
):
    import kiosk.services.transactions as transactions

    started, real = threading.Event(), transactions.settle_unfinished

    def slow_settle(engine):  # a void retried against a slow server, say
        started.set()
        time.sleep(0.4)
        return real(engine)

    monkeypatch.setattr(transactions, "settle_unfinished", slow_settle)
    t = threading.Thread(target=kiosk.engine.settle)
    t.start()
    assert started.wait(5)
    result = kiosk.engine.redeem(kiosk.member("M0002"), MUG)  # waits, then runs
    t.join()
    assert result.outcome is Outcome.DISPENSED and kiosk.pulses(1) == 1


def test_paper_out_queues_the_receipt_and_reprints_after_loading(server, kiosk):
    kiosk.printer.set_paper(PaperState.OUT)
    result = kiosk.engine.redeem(kiosk.member("M0002"), MUG)
    assert result.outcome is Outcome.DISPENSED and result.queued and not result.printed
    assert result.txn.state is TxnState.DONE and result.txn.receipt_queued
    assert len(kiosk.receipts) == 1 and kiosk.printer.receipts == []
    assert kiosk.receipts.reprint_all().error is not None
    kiosk.printer.set_paper(PaperState.OK)
    again = kiosk.receipts.reprint_all()
    assert (again.printed, again.left) == (1, 0)
    (paper,) = kiosk.printer.wait_for_receipts(1)
    assert result.txn.txn_id in flat(paper.text)


def test_server_unreachable_at_capture_keeps_the_gift_charged_later(server, kiosk):
    real_capture = kiosk.client.capture

    def unplugged(txn_id):
        raise Unreachable("store server at 127.0.0.1: connection refused (cable pulled)")

    kiosk.client.capture = unplugged
    result = kiosk.engine.redeem(kiosk.member("M0002"), MUG)
    assert result.outcome is Outcome.DISPENSED_UNCONFIRMED
    assert result.txn.state is TxnState.DISPENSED and kiosk.pulses(1) == 1
    kiosk.client.capture = real_capture
    kiosk.sim.close_door(1)
    (settled,) = kiosk.engine.settle()
    assert settled.after is TxnState.DONE and kiosk.pulses(1) == 1
    assert server.redemptions()[result.txn.txn_id] == "captured"
    assert server.balance("M0002") == 1900 and len(kiosk.receipts) == 1


def test_every_log_line_of_a_transaction_carries_its_id(server, kiosk, caplog):
    caplog.handler.addFilter(TxnFilter())
    with caplog.at_level(logging.INFO, logger="kiosk"):
        kiosk.sim.jam(1)  # a flow with warnings, a flag, a void and a voucher
        result = kiosk.engine.redeem(kiosk.member("M0002"), MUG)
    lines = [r for r in caplog.records if r.name.startswith("kiosk.services")]
    assert len(lines) >= 5
    assert {getattr(r, "txn_id", None) for r in lines} == {result.txn.txn_id}


# ---- the wheel, made deterministic: every segment but one out of stock leaves the draw ----------


def test_a_wheel_gift_opens_its_door_once_and_is_charged_only_after_the_sensor(server, kiosk):
    server.only_prize(TOTE_PRIZE)  # the tote bag, in compartment 2
    kiosk.sim.set_open_delay(2, 0.2)  # a slow door: DISPENSED must wait for the sensor
    seen = []

    def watch(p) -> None:  # what the door sensor and the ledger say at each step
        open_now = kiosk.locker.door_state(2) is DoorState.OPEN
        seen.append((p.state, open_now, server.redemptions().get(p.txn_id), p.prize))

    result = kiosk.engine.spin(kiosk.member("M0004"), kiosk.wheel(), watch)
    txn_id = result.txn.txn_id
    assert result.outcome is Outcome.DISPENSED and result.printed
    assert result.ctx.prize.kind is PrizeKind.GIFT and result.ctx.prize.segment_idx == TOTE_PRIZE
    assert (result.txn.compartment, result.txn.sku) == (2, "GIFT-TOTE")
    S = TxnState
    expected = [S.NEW, S.HELD, S.DOOR_OPENING, S.DISPENSED, S.CAPTURED, S.PRINTED, S.DONE]
    assert states(kiosk, txn_id) == expected
    steps = {state: (open_now, ledger, prize) for state, open_now, ledger, prize in seen}
    assert steps[S.HELD] == (False, "held", result.ctx.prize)  # the prize shows before the door
    assert steps[S.DOOR_OPENING][:2] == (False, "held")  # journalled before the pulse
    assert steps[S.DISPENSED][:2] == (True, "held")  # the sensor saw it open; not charged yet
    assert steps[S.CAPTURED][:2] == (True, "captured")
    assert kiosk.pulses(2) == 1 and sum(kiosk.pulses(n) for n in range(1, 7)) == 1
    assert server.redemptions()[txn_id] == "captured"
    assert server.balance("M0004") == 23000 - 100
    assert server.stock(2) == 5 - 1 and server.prize_stock(TOTE_PRIZE) == 5 - 1
    (paper,) = kiosk.printer.wait_for_receipts(1)
    text = flat(paper.text)
    assert txn_id in text and result.ctx.prize.commitment in text and "帆布袋" in text


def test_a_wheel_coupon_prints_the_coupon_and_opens_no_door(server, kiosk):
    server.only_prize(COUPON_PRIZE)
    result = kiosk.engine.spin(kiosk.member("M0004"), kiosk.wheel())
    txn_id = result.txn.txn_id
    assert result.outcome is Outcome.ISSUED and result.printed
    assert result.ctx.prize.kind is PrizeKind.COUPON and result.txn.compartment is None
    assert TxnState.DOOR_OPENING not in states(kiosk, txn_id)
    assert sum(kiosk.pulses(n) for n in range(1, 7)) == 0
    code = result.ctx.coupon_code
    assert code and code.startswith("CPN-") and result.ctx.coupon_valid_until
    assert server.redemptions()[txn_id] == "captured"
    assert server.balance("M0004") == 23000 - 100 and server.prize_stock(COUPON_PRIZE) == 30 - 1
    row = server.store.db.connection().execute(
        "SELECT member_id, value_cents FROM coupons WHERE code = ?", (code,)
    )
    assert dict(row.fetchone()) == {"member_id": "M0004", "value_cents": 1000}
    papers = kiosk.printer.wait_for_receipts(2)  # the wheel receipt and the coupon
    assert any(result.ctx.prize.commitment in flat(p.text) for p in papers)
    assert any(code in flat(p.text) and result.ctx.coupon_valid_until in flat(p.text)
               for p in papers)  # fmt: skip


def test_a_jammed_door_on_a_wheel_gift_returns_the_cost_and_the_spin_with_a_claim(server, kiosk):
    server.only_prize(TOTE_PRIZE)
    kiosk.sim.jam(2)
    who = kiosk.member("M0004")
    spins_before = kiosk.client.wheel_info("LUCKY", "M0004", who.session).spins_left
    result = kiosk.engine.spin(who, kiosk.wheel())
    txn_id = result.txn.txn_id
    assert result.outcome is Outcome.NEEDS_CHECK and result.txn.needs_check
    assert result.txn.void_reason.startswith("door_jammed")
    assert kiosk.pulses(2) == 1 and 2 in kiosk.flags.flagged()
    assert server.redemptions()[txn_id] == "voided"
    assert server.void_reason(txn_id).startswith("gift_not_dispensed: door_jammed")
    # a void returns the cost and the stock, not the spin (docs/transactions.md)
    assert server.balance("M0004") == 23000 and result.ctx.points_returned == 100
    assert spins_before == 3
    assert kiosk.client.wheel_info("LUCKY", "M0004", who.session).spins_left == 2
    assert server.stock(2) == 5 and server.prize_stock(TOTE_PRIZE) == 5
    (voucher,) = kiosk.printer.wait_for_receipts(1)
    assert txn_id in flat(voucher.text) and "staff" in flat(voucher.text)
    (event,) = kiosk.outbox.pending(10)
    assert (event.kind, event.payload["compartment"]) == ("needs_check", 2)
    # the wheel draws the tote again, but its compartment waits for staff: no second pulse
    again = kiosk.engine.spin(who, kiosk.wheel())
    assert again.outcome is Outcome.VOIDED and again.txn.void_reason == "compartment_needs_check"
    assert kiosk.pulses(2) == 1 and server.redemptions()[again.txn.txn_id] == "voided"
    assert server.void_reason(again.txn.txn_id) == "gift_not_dispensed: compartment_needs_check"
    assert server.balance("M0004") == 23000
    assert kiosk.client.wheel_info("LUCKY", "M0004", who.session).spins_left == 1
    alerts = server.store.db.connection().execute(
        "SELECT COUNT(*) FROM alerts WHERE kind = 'spin_gift_not_dispensed'"
    )
    assert alerts.fetchone()[0] == 2  # staff look at each gift the wheel gave but never handed
