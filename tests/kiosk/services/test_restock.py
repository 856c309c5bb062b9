"""Restock sessions on the real pieces: journal, outbox, receipt queue and engine from the bench
rig, the locker simulator (gpiozero MockFactory) and the virtual printer; the end-to-end tests
add the real store server on loopback, a staff badge and PIN, and the inventory upload."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from kiosk.domain.catalog import parse_catalog
from kiosk.domain.staff import ScryptParams
from kiosk.domain.transaction import TxnKind, new_transaction
from kiosk.i18n import render
from kiosk.ports import DoorState, PaperState
from kiosk.services.restock import (
    COUNT_TABLE,
    SESSION_TABLE,
    CompartmentStock,
    RestockError,
)
from kiosk.services.restock_service import RestockService
from kiosk.services.staff_auth import StaffAuthenticator, StaffSession
from kiosk.services.txn_steps import Outcome, TransactionRefused
from storeserver import staff

from .rig import EARBUDS, MUG, TOTE, KioskSide, ServerSide

WANG = StaffSession("S0001", "王店长 / Manager Wang", online=False)
LI = StaffSession("S0002", "李店员 / Clerk Li", online=False)
CATALOG = parse_catalog(  # the store server's /v1/catalog shape, for kiosk-01 of the demo store
    {
        "version": "t1",
        "items": [
            {"sku": sku, "name_zh": zh, "name_en": en, "kind": "gift", "points": 300,
             "cash_cents": 0, "stock": None,
             "compartments": [{"number": n, "stock": s} for n, s in compartments]}
            for sku, zh, en, compartments in [
                ("GIFT-MUG", "保温杯", "Thermal mug", [(1, 3), (6, 0)]),
                ("GIFT-TOTE", "帆布袋", "Canvas tote bag", [(2, 5)]),
                ("GIFT-TEA", "精品茶叶礼盒", "Premium tea gift box", [(3, 2)]),
            ]
        ]
        + [{"sku": "CPN-10", "name_zh": "10元代金券", "name_en": "¥10 off coupon",
            "kind": "coupon", "points": 500, "cash_cents": 0, "stock": None, "compartments": []}],
    }
)  # fmt: skip


class FakeClock:
    """The idle timer's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def kiosk(tmp_path) -> Iterator[KioskSide]:
    """The kiosk alone: nothing in these tests reaches for the store server."""
    k = KioskSide(tmp_path / "kiosk", "http://127.0.0.1:1")
    yield k
    k.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(kiosk, clock) -> RestockService:
    return kiosk.restock_service(catalog=CATALOG, poll_s=0.02, clock=clock)


def flat(text: str) -> str:
    return "".join(text.split())


def shut(kiosk: KioskSide, session, number: int) -> None:
    """Staff close the door; the locker's debounced reading follows within a few polls."""
    kiosk.sim.close_door(number)
    assert session.wait_closed(timeout_s=2.0)


def inventory(kiosk: KioskSide) -> list[tuple[str, dict]]:
    """The queued counts, each checked for its stamp (test_restock_stock.py covers what the
    stamp does) and shown without it."""
    out = []
    for e in kiosk.outbox.pending(50):
        if e.kind == "inventory":
            payload = dict(e.payload)
            stamp = {k: payload.pop(k) for k in ("after_hold_seq", "open_holds")}
            assert isinstance(stamp["after_hold_seq"], int), stamp
            out.append((e.event_id, payload))
    return out


def flag(kiosk: KioskSide, number: int, sku: str = "GIFT-TOTE") -> str:
    """A member's door jammed on ``number`` earlier: the engine's own flagging path."""
    txn = new_transaction(
        f"txn-{number}", TxnKind.REDEEM, "M0002", points=300, at=0.0, sku=sku, compartment=number
    )
    kiosk.flags.mark(number, txn, "door_jammed: not open after 0.5 s")
    return txn.txn_id


# ---- the flow -----------------------------------------------------------------------------------


def test_one_door_at_a_time_a_count_only_once_shut_then_outbox_view_and_slip(kiosk, service):
    session = service.start(WANG)
    opened = session.open_compartment(1)
    assert opened.stock == CompartmentStock("GIFT-MUG", 3) and not opened.needs_check
    assert kiosk.sim.is_open(1) and kiosk.pulses(1) == 1

    with pytest.raises(RestockError) as second:
        session.open_compartment(2)
    assert second.value.code == "door_open" and "compartment 1" in render(second.value).en
    assert "柜格 1" in render(second.value).zh and kiosk.pulses(2) == 0

    with pytest.raises(RestockError) as early:
        session.enter_count(1, "GIFT-MUG", 10)
    assert early.value.code == "door_open" and "once the door is shut" in render(early.value).en
    assert inventory(kiosk) == []

    shut(kiosk, session, 1)
    accepted = session.enter_count(1, "GIFT-MUG", 10)
    assert (accepted.before, accepted.after) == (3, 10)
    assert inventory(kiosk) == [
        (f"{session.session_id}:1:1", {"compartment": 1, "sku": "GIFT-MUG", "count": 10})
    ]
    assert service.stock_of(1) == CompartmentStock("GIFT-MUG", 10)

    session.open_compartment(2)  # the first door is shut: the next one may open
    shut(kiosk, session, 2)
    session.enter_count(2, "GIFT-TOTE", 4)

    summary = session.finish()
    assert summary.slip_printed and not summary.slip_queued and summary.alerts == ()
    assert [(ln.compartment, ln.count_before, ln.count_after) for ln in summary.lines] == [
        (1, 3, 10),
        (2, 5, 4),
    ]
    (slip,) = kiosk.printer.wait_for_receipts(1)
    assert "S0001" in flat(slip.text) and "3->10" in flat(slip.text) and "+6" in flat(slip.text)
    assert kiosk.journal.all(SESSION_TABLE) == {} and kiosk.journal.all(COUNT_TABLE) == {}
    # the engine's lock is free again: a member may redeem
    assert kiosk.lock.try_hold("transaction")
    kiosk.lock.release()


def test_the_open_intent_is_durable_before_the_pulse(kiosk, service, monkeypatch):
    session = service.start(WANG)
    seen = []
    real_open = kiosk.locker.open

    def open_and_look(number):
        seen.append(kiosk.journal.get(SESSION_TABLE, session.session_id))
        return real_open(number)

    monkeypatch.setattr(kiosk.locker, "open", open_and_look)
    session.open_compartment(3)
    assert seen[0]["compartment"] == 3 and seen[0]["door"] == "opening"
    assert seen[0]["staff_id"] == "S0001"
    assert kiosk.journal.get(SESSION_TABLE, session.session_id)["door"] == "opened"


def test_a_restock_holds_the_engine_so_no_member_can_redeem(kiosk, service):
    session = service.start(WANG)
    session.open_compartment(1)
    with pytest.raises(TransactionRefused) as refused:
        kiosk.engine.redeem(kiosk.member("M0002", online=False), MUG)
    assert (
        refused.value.code == "restocking"
        and "restocking" in refused.value.message.en
        and kiosk.pulses(1) == 1
    )
    assert kiosk.engine.settle() == []  # recovery waits too
    with pytest.raises(RestockError) as other:
        service.start(LI)
    assert other.value.code == "session_open" and "S0001" in render(other.value).en


def test_no_restock_starts_while_a_member_transaction_runs(kiosk, service):
    assert kiosk.lock.try_hold("transaction")  # a redemption in its payment wait
    try:
        with pytest.raises(RestockError) as busy:
            service.start(WANG)
        assert busy.value.code == "busy" and "member transaction" in render(busy.value).en
    finally:
        kiosk.lock.release()
    assert service.start(WANG).summary is None


def test_counts_are_checked_before_anything_is_written(kiosk, service):
    session = service.start(WANG)
    with pytest.raises(RestockError, match="Open compartment 2 first"):
        session.enter_count(2, "GIFT-TOTE", 4)
    session.open_compartment(2)
    shut(kiosk, session, 2)
    for sku, count, code in [
        ("GIFT-TOTE", -1, "bad_count"),
        ("GIFT-TOTE", 10_001, "bad_count"),
        ("GIFT-TOTE", True, "bad_count"),
        (None, 3, "bad_count"),
        ("GIFT-NOPE", 4, "unknown_sku"),
        ("CPN-10", 4, "unknown_sku"),  # a coupon is printed, never put in a compartment
    ]:
        with pytest.raises(RestockError) as err:
            session.enter_count(2, sku, count)
        assert err.value.code == code, (sku, count)
    assert inventory(kiosk) == [] and kiosk.journal.all(COUNT_TABLE) == {}
    emptied = session.enter_count(2, None, 0)
    assert emptied.before == 5 and inventory(kiosk)[0][1] == {
        "compartment": 2,
        "sku": None,
        "count": 0,
    }
    (line,) = session.finish().lines
    assert line.item is None and line.added == -5


def test_an_unknown_compartment_is_refused_without_a_record(kiosk, service):
    session = service.start(WANG)
    with pytest.raises(RestockError) as err:
        session.open_compartment(9)
    assert err.value.code == "unknown_compartment" and "kiosk.toml" in err.value.detail
    assert kiosk.journal.get(SESSION_TABLE, session.session_id)["compartment"] is None


def test_a_recount_in_the_same_session_keeps_the_first_before(kiosk, service):
    session = service.start(WANG)
    session.open_compartment(3)
    shut(kiosk, session, 3)
    session.enter_count(3, "GIFT-TEA", 8)
    second = session.enter_count(3, "GIFT-TEA", 9)  # a typo corrected
    assert second.before == 2 and second.event_id.endswith(":3:2")
    assert [p["count"] for _, p in inventory(kiosk)] == [8, 9]  # sent in order: 9 wins
    (line,) = session.finish().lines
    assert (line.count_before, line.count_after) == (2, 9)


# ---- needs-check, paper, jams ---------------------------------------------------------------------


def test_restock_clears_a_needs_check_flag_in_the_staff_members_name(kiosk, service, caplog):
    caplog.set_level(logging.INFO)
    flag(kiosk, 2)
    flag(kiosk, 3, "GIFT-TEA")
    session = service.start(WANG)
    assert session.open_compartment(2).needs_check
    shut(kiosk, session, 2)
    accepted = session.enter_count(2, "GIFT-TOTE", 5)
    assert accepted.flag_cleared and set(kiosk.flags.flagged()) == {3}
    assert "compartment 2 needs-check cleared by staff S0001" in caplog.text
    summary = session.finish()
    (alert,) = summary.alerts  # compartment 3 was not checked
    assert "Compartment 3 needs a check" in alert.en and "柜格 3" in alert.zh
    assert 2 not in kiosk.flags.flagged()


def test_paper_out_queues_the_slip_and_the_next_session_reprints_it(kiosk, service):
    kiosk.printer.set_paper(PaperState.OUT)
    session = service.start(WANG)
    session.open_compartment(1)
    shut(kiosk, session, 1)
    session.enter_count(1, "GIFT-MUG", 12)
    summary = session.finish()
    assert not summary.slip_printed and summary.slip_queued and summary.left == 1
    assert any("load paper" in a.en for a in summary.alerts)
    assert kiosk.printer.receipts == [] and len(kiosk.receipts) == 1

    kiosk.printer.set_paper(PaperState.OK)  # staff load a roll, sign in again, finish
    again = service.start(WANG).finish()
    assert again.lines == () and not again.slip_printed and again.reprinted == 1
    assert again.left == 0 and again.alerts == ()
    (slip,) = kiosk.printer.wait_for_receipts(1)
    assert "3->12" in flat(slip.text)


def test_a_jammed_door_is_reported_and_the_session_goes_on(kiosk, service):
    kiosk.sim.jam(3)
    session = service.start(WANG)
    with pytest.raises(RestockError) as jam:
        session.open_compartment(3)
    assert jam.value.code == "jammed" and "go on with other compartments" in render(jam.value).en
    assert kiosk.journal.get(SESSION_TABLE, session.session_id)["door"] == "jammed"
    (fault,) = [e for e in kiosk.outbox.pending(50) if e.kind == "fault"]
    assert fault.payload["what"] == "restock_door_jammed" and fault.payload["compartment"] == 3
    with pytest.raises(RestockError, match="Open compartment 3 first"):
        session.enter_count(3, "GIFT-TEA", 5)  # never opened: nothing to count

    session.open_compartment(1)
    shut(kiosk, session, 1)
    session.enter_count(1, "GIFT-MUG", 6)
    summary = session.finish()
    assert [ln.compartment for ln in summary.lines] == [1]
    (alert,) = summary.alerts
    assert "Compartment 3 did not open" in alert.en


# ---- idle timeout -------------------------------------------------------------------------------


def test_an_idle_session_ends_but_never_with_a_door_open(kiosk, service, clock):
    session = service.start(WANG)
    session.open_compartment(1)
    clock.t += 600  # staff fill the compartment for ten minutes
    assert session.tick() is None and session.summary is None
    kiosk.sim.close_door(1)
    assert session.wait_closed(timeout_s=2.0)  # the door shut now: the idle time starts here
    session.enter_count(1, "GIFT-MUG", 7)
    clock.t += 119
    assert session.tick() is None
    clock.t += 1
    summary = session.tick()
    assert summary is not None and summary.ended == "timeout" and summary.slip_printed
    assert kiosk.printer.wait_for_receipts(1)
    with pytest.raises(RestockError) as ended:
        session.open_compartment(2)
    assert ended.value.code == "ended"
    assert service.start(LI).staff is LI  # the lock was released


def test_a_step_after_the_timeout_is_refused_and_ends_the_session(kiosk, service, clock):
    session = service.start(WANG)
    clock.t += 121
    with pytest.raises(RestockError) as expired:
        session.open_compartment(1)
    assert expired.value.code == "expired" and "120 s" in render(expired.value).en
    assert kiosk.pulses(1) == 0 and session.summary.ended == "timeout"
    assert kiosk.journal.all(SESSION_TABLE) == {}


def test_tick_never_blocks_the_ui_while_a_step_runs(kiosk, service, clock):
    session = service.start(WANG)
    clock.t += 600
    holding, done = threading.Event(), threading.Event()

    def a_slow_pulse():
        with session._lock:
            holding.set()
            done.wait(5.0)

    worker = threading.Thread(target=a_slow_pulse, daemon=True)
    worker.start()
    assert holding.wait(5.0)
    try:
        assert session.tick() is None and session.summary is None
    finally:
        done.set()
        worker.join(5.0)
    assert session.tick().ended == "timeout"


def test_wait_closed_gives_up_after_its_timeout(kiosk, service):
    session = service.start(WANG)
    session.open_compartment(1)
    assert not session.wait_closed(timeout_s=0.1)
    assert kiosk.locker.door_state(1) is DoorState.OPEN
    with pytest.raises(RestockError, match="before finishing"):
        session.finish()


# ---- crash --------------------------------------------------------------------------------------


def test_a_crash_mid_restock_is_reported_at_start_up(kiosk, service):
    session = service.start(WANG)
    session.open_compartment(1)
    kiosk.reopen()  # the process died with compartment 1 open
    restarted = kiosk.restock_service(catalog=CATALOG)
    (left,) = restarted.report_unfinished()
    assert (left.session_id, left.staff_id, left.compartment, left.door) == (
        session.session_id,
        "S0001",
        1,
        "opened",
    )
    assert left.state == "active" and left.counts == ()
    faults = [e for e in kiosk.outbox.pending(50) if e.kind == "fault"]
    assert [e.event_id for e in faults] == [f"{session.session_id}:interrupted"]
    restarted.report_unfinished()  # reported again (the screen asks twice): no second event
    assert len([e for e in kiosk.outbox.pending(50) if e.kind == "fault"]) == 1
    assert restarted.acknowledge(session.session_id) and restarted.unfinished() == []


def test_a_count_cut_before_its_event_is_queued_and_its_flag_cleared_at_start_up(
    kiosk, service, monkeypatch
):
    flag(kiosk, 2)
    session = service.start(WANG)
    session.open_compartment(2)
    shut(kiosk, session, 2)

    def power_cut(*args, **kwargs):
        raise SystemExit("power cut after the count was journalled")

    monkeypatch.setattr(kiosk.outbox, "add", power_cut)
    with pytest.raises(SystemExit):
        session.enter_count(2, "GIFT-TOTE", 6)
    monkeypatch.undo()
    assert inventory(kiosk) == [] and 2 in kiosk.flags.flagged()

    kiosk.reopen()
    restarted = kiosk.restock_service(catalog=CATALOG)
    (left,) = restarted.report_unfinished()
    assert left.counts == ((2, "GIFT-TOTE", 6),) and left.staff_id == "S0001"
    assert inventory(kiosk) == [
        (f"{session.session_id}:2:1", {"compartment": 2, "sku": "GIFT-TOTE", "count": 6})
    ]
    assert kiosk.flags.flagged() == {}


# ---- end to end: the store server on loopback ---------------------------------------------------


@pytest.fixture
def server(tmp_path) -> Iterator[ServerSide]:
    s = ServerSide(tmp_path / "server")
    yield s
    s.stop()


@pytest.fixture
def online(tmp_path, server) -> Iterator[KioskSide]:
    k = KioskSide(tmp_path / "online", server.url, server.enrollment_code(), codes=server.code)
    yield k
    k.close()


def sign_in(server: ServerSide, kiosk: KioskSide, staff_id: str = "S0001", pin: str = "246810"):
    with server.store.db.transaction() as conn:
        badge = staff.issue_badge(conn, server.clock, server.store.signing_key, staff_id, 365)
    auth = StaffAuthenticator(
        kiosk.client,
        kiosk.journal,
        server.store.signing_key.public_key(),
        lambda: server.clock.now().timestamp(),
        hash_params=ScryptParams(n=2**10),
    )
    return auth.authenticate(badge["code"], pin)


def upload(kiosk: KioskSide) -> None:
    report = kiosk.outbox.settle(kiosk.client.send_events(kiosk.outbox.pending(50)))
    assert report.alerted == 0 and len(kiosk.outbox) == 0


def test_end_to_end_sign_in_restock_upload_and_the_server_stock(server, online):
    online.sim.jam(2)
    jammed = online.engine.redeem(online.member("M0002"), TOTE)  # flags compartment 2
    assert jammed.outcome is Outcome.NEEDS_CHECK and 2 in online.flags.flagged()
    online.sim.jam(2, False)

    staff_session = sign_in(server, online)
    assert staff_session.staff_id == "S0001" and staff_session.online
    service = online.restock_service(catalog=parse_catalog(online.client.catalog()), poll_s=0.02)
    session = service.start(staff_session)
    assert session.open_compartment(1).stock == CompartmentStock("GIFT-MUG", 3)
    with pytest.raises(RestockError):
        session.open_compartment(2)
    with pytest.raises(TransactionRefused):
        online.engine.redeem(online.member("M0002"), MUG)
    with pytest.raises(RestockError, match="once the door is shut"):
        session.enter_count(1, "GIFT-MUG", 10)
    shut(online, session, 1)
    session.enter_count(1, "GIFT-MUG", 10)
    assert session.open_compartment(2).needs_check
    shut(online, session, 2)
    assert session.enter_count(2, "GIFT-TOTE", 8).flag_cleared
    summary = session.finish()
    assert summary.slip_printed and summary.reprinted == 0 and summary.alerts == ()

    upload(online)  # needs_check, then the two inventory counts
    assert (server.stock(1), server.stock(2)) == (10, 8)
    assert online.engine.redeem(online.member("M0002"), TOTE).outcome is Outcome.DISPENSED
    assert server.stock(2) == 7


def test_end_to_end_a_points_and_cash_payment_wait_keeps_restock_out(server, online):
    shown, release = threading.Event(), threading.Event()

    def progress(p):
        if p.pay_url:
            shown.set()
            release.wait(5.0)
            online.engine.cancel_payment()

    worker = threading.Thread(
        target=online.engine.redeem, args=(online.member("M0003"), EARBUDS, progress), daemon=True
    )
    worker.start()
    assert shown.wait(5.0)
    service = online.restock_service(catalog=CATALOG)
    with pytest.raises(RestockError) as busy:
        service.start(sign_in(server, online))
    assert busy.value.code == "busy"
    release.set()
    worker.join(5.0)
    assert not worker.is_alive()
    session = service.start(sign_in(server, online))
    assert session.finish().ended == "finished"
