"""The outbox on the real journal: durability, order, settling, alerts, poison isolation."""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.errors import JournalError, KioskError, Rejected, Unreachable
from kiosk.ports import EventResult, OutboxEvent
from kiosk.storage import Journal
from kiosk.storage.outbox import MAX_PAYLOAD_BYTES, Outbox, OutboxError, SettleReport

T0 = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal.open(tmp_path / "state") as j:
        yield j


@pytest.fixture
def outbox(journal: Journal) -> Outbox:
    return Outbox(journal, now=lambda: T0)


def inv(n: int) -> dict:
    return {"compartment": n, "sku": "GIFT-MUG", "count": n}


def ids(events: list[OutboxEvent]) -> list[str]:
    return [e.event_id for e in events]


# ---- adding -------------------------------------------------------------------------------------


def test_add_is_durable_with_a_uuid4_and_the_time(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        event = Outbox(j, now=lambda: T0).add("inventory", inv(1))
    assert uuid.UUID(event.event_id).version == 4
    assert (event.kind, event.at, event.payload) == (
        "inventory",
        "2026-11-23T02:00:00.000+00:00",
        inv(1),
    )
    with Journal.open(tmp_path) as j:  # durable: a new process sees it
        assert Outbox(j).pending(10) == [event]


def test_at_may_be_given(outbox: Outbox) -> None:
    later = dt.datetime(2026, 11, 23, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert outbox.add("fault", {}, at=later).at == "2026-11-23T02:30:00.000+00:00"
    assert outbox.add("fault", {}, at="2026-11-23T02:00:00+00:00").at == "2026-11-23T02:00:00+00:00"


@pytest.mark.parametrize(
    "kind, payload, at, match",
    [
        ("selfie", {}, None, "kind 'selfie' is not one of"),
        ("fault", {"x": float("nan")}, None, "not plain JSON"),
        ("fault", {"x": {1, 2}}, None, "not plain JSON"),
        ("fault", {"x": "\ud800"}, None, "not plain JSON"),  # the server refuses lone surrogates
        ("fault", ["not", "a", "dict"], None, "must be a dict"),
        ("fault", {}, dt.datetime(2026, 11, 23), "no time zone"),
        ("fault", {}, "yesterday", "not an ISO 8601 time"),
        ("fault", {}, "2026-11-23T02:00:00+00:00" + " " * 40, "not an ISO 8601 time"),
    ],
)
def test_add_refuses_what_the_server_or_journal_would(outbox, kind, payload, at, match) -> None:
    with pytest.raises(OutboxError, match=match) as info:
        outbox.add(kind, payload, at=at)
    assert isinstance(info.value, KioskError)
    assert len(outbox) == 0


def test_payload_size_limit_is_checked_at_add(outbox: Outbox) -> None:
    overhead = len('{"note":""}')
    outbox.add("fault", {"note": "x" * (MAX_PAYLOAD_BYTES - overhead)})  # exactly the limit
    with pytest.raises(OutboxError, match=f"{MAX_PAYLOAD_BYTES}-byte limit") as info:
        outbox.add("fault", {"note": "x" * (MAX_PAYLOAD_BYTES - overhead + 1)})
    assert "send a reference" in str(info.value)
    with pytest.raises(OutboxError, match="byte limit"):  # counted in UTF-8 bytes, not characters
        outbox.add("fault", {"note": "货" * (MAX_PAYLOAD_BYTES // 3)})
    assert len(outbox) == 1


def test_a_largest_event_still_fits_in_an_alert_with_a_long_message(outbox: Outbox) -> None:
    overhead = len('{"note":""}')
    big = outbox.add("fault", {"note": "货" * ((MAX_PAYLOAD_BYTES - overhead) // 3)})
    long_reason, long_message = "r" * 5000, "服务器拒绝" * 2000
    outbox.settle([EventResult(big.event_id, "rejected", long_reason, long_message)])
    [alert] = outbox.alerts()
    assert alert.event == big and alert.message is not None and alert.reason is not None
    assert alert.message.endswith("...") and len(alert.message.encode()) <= 1024
    assert len(outbox) == 0


def test_safe_mode_journal_refuses_add(tmp_path: Path) -> None:
    (tmp_path / "journal.safe-mode").write_text("corrupt: test\n")
    with Journal.open(tmp_path) as j:
        box = Outbox(j)
        assert len(box) == 0 and box.pending(5) == [] and box.alerts() == []
        with pytest.raises(JournalError, match="safe mode"):
            box.add("fault", {})


# ---- order --------------------------------------------------------------------------------------


def test_pending_is_oldest_first_and_limited(outbox: Outbox) -> None:
    made = [outbox.add("inventory", inv(n)) for n in range(1, 8)]
    assert outbox.pending(3) == made[:3]
    assert outbox.pending(100) == made
    assert outbox.pending(0) == []
    assert len(outbox) == 7


def test_order_survives_reopening_and_continues_after_it(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        box = Outbox(j)
        made = [box.add("inventory", inv(n)) for n in range(1, 6)]
        box.settle([EventResult(made[0].event_id, "applied")])
    with Journal.open(tmp_path) as j:
        box = Outbox(j)
        later = box.add("fault", {"after": "restart"})
        assert ids(box.pending(50)) == ids([*made[1:], later])
        seqs = [j.get("outbox", e.event_id)["seq"] for e in [*made[1:], later]]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_concurrent_adds_get_distinct_increasing_sequence_numbers(outbox: Outbox, journal) -> None:
    start = threading.Barrier(4)

    def add_many(worker: int) -> None:
        start.wait()
        for n in range(15):
            outbox.add("fault", {"worker": worker, "n": n})

    threads = [threading.Thread(target=add_many, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    pending = outbox.pending(100)
    assert len(pending) == len(outbox) == 60
    seqs = [journal.get("outbox", e.event_id)["seq"] for e in pending]
    assert seqs == list(range(1, 61))
    for worker in range(4):  # each thread's events keep that thread's order
        assert [e.payload["n"] for e in pending if e.payload["worker"] == worker] == list(range(15))


# ---- settling -----------------------------------------------------------------------------------


def test_settle_applied_rejected_conflict_unknown_and_missing(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        box = Outbox(j, now=lambda: T0)
        a, b, c, d, e = (box.add("inventory", inv(n)) for n in range(1, 6))
        report = box.settle(
            [
                EventResult(a.event_id, "applied"),
                EventResult(b.event_id, "rejected", "invalid_payload", "payload.count must be ..."),
                EventResult(c.event_id, "conflict", "price_changed", "GIFT-MUG costs 800 points"),
                EventResult(d.event_id, "maybe"),  # a status this kiosk does not know
                EventResult("not-ours", "applied"),
                # e: no result at all
            ]
        )
        assert report == SettleReport(applied=1, alerted=2, ignored=1, unknown_status=1)
        assert report.progress
        assert box.pending(10) == [d, e]
        alerts = box.alerts()
        assert [(x.alert_id, x.status, x.reason) for x in alerts] == [
            (b.event_id, "rejected", "invalid_payload"),
            (c.event_id, "conflict", "price_changed"),
        ]
        assert alerts[1].event == c and alerts[1].message == "GIFT-MUG costs 800 points"
        assert alerts[1].at == "2026-11-23T02:00:00+00:00"
        # settling the same answers again changes nothing (a resend after a lost answer)
        assert box.settle([EventResult(a.event_id, "applied")]) == SettleReport(ignored=1)
    with Journal.open(tmp_path) as j:  # both tables are durable
        box = Outbox(j)
        assert ids(box.pending(10)) == [d.event_id, e.event_id]
        assert [x.alert_id for x in box.alerts()] == [b.event_id, c.event_id]
        assert box.acknowledge(b.event_id) is True
        assert box.acknowledge(b.event_id) is False
    with Journal.open(tmp_path) as j:
        assert [x.alert_id for x in Outbox(j).alerts()] == [c.event_id]


def test_settle_survives_garbage_results(outbox: Outbox) -> None:
    event = outbox.add("fault", {})
    garbage = [None, 42, "applied", EventResult(None, "applied"), object()]  # type: ignore[arg-type]
    assert outbox.settle(garbage) == SettleReport(ignored=5)  # type: ignore[arg-type]
    assert outbox.pending(5) == [event]


def test_a_crash_between_alert_and_delete_parks_once(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        event = Outbox(j).add("offline_redemption", {"txn_id": "t"})
        # as if park() wrote the alert and the power went before the delete
        j.put(
            "sync_alerts", event.event_id, {**j.get("outbox", event.event_id), "status": "conflict"}
        )
    with Journal.open(tmp_path) as j:
        box = Outbox(j)
        assert box.pending(5) == [event]  # still owed: it is sent again
        box.settle([EventResult(event.event_id, "conflict", "insufficient_points", "no points")])
        assert len(box) == 0
        assert [(a.alert_id, a.reason) for a in box.alerts()] == [
            (event.event_id, "insufficient_points")
        ]


# ---- delivering: poison isolation ---------------------------------------------------------------


class Server:
    """A `send` that refuses or fails on poisoned events, and records every call."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[list[str]] = []
        self.applied: list[str] = []
        self.fail = fail

    def send(self, batch: list[OutboxEvent]) -> list[EventResult]:
        self.calls.append(ids(batch))
        if any(e.payload.get("poison") for e in batch):
            raise self.fail or Rejected(422, "invalid_request", "events.3.at: too long")
        self.applied.extend(ids(batch))
        return [EventResult(e.event_id, "applied") for e in batch]


def test_a_422_poison_event_is_isolated_and_parked_with_the_servers_message(outbox) -> None:
    made = [outbox.add("fault", {"n": n, "poison": n == 11}) for n in range(16)]
    server = Server()
    report = outbox.deliver(made, server.send, probe=lambda: pytest.fail("no probe on a 422"))
    assert report == SettleReport(applied=15, alerted=1)
    assert server.applied == [e.event_id for e in made if not e.payload["poison"]]  # in order
    assert len(server.calls) <= 1 + 2 * 4  # bisecting 16 events: about 2 log2(16) more calls
    [alert] = outbox.alerts()
    assert (alert.alert_id, alert.status, alert.reason) == (
        made[11].event_id,
        "rejected",
        "invalid_request",
    )
    assert alert.message is not None and "events.3.at: too long" in alert.message
    assert len(outbox) == 0


def test_a_refusal_about_the_kiosk_is_not_blamed_on_an_event(outbox) -> None:
    made = [outbox.add("fault", {"n": n, "poison": True}) for n in range(4)]
    server = Server(Rejected(401, "bad_token", "unknown kiosk token: re-enroll"))
    with pytest.raises(Rejected):
        outbox.deliver(made, server.send, probe=lambda: True)
    assert len(server.calls) == 1 and outbox.alerts() == [] and len(outbox) == 4


def test_an_outage_is_not_bisected(outbox) -> None:
    made = [outbox.add("fault", {"n": n, "poison": True}) for n in range(4)]
    server = Server(Unreachable("refused the connection"))
    with pytest.raises(Unreachable):
        outbox.deliver(made, server.send, probe=lambda: False)
    assert len(server.calls) == 1 and len(outbox) == 4


def test_an_event_the_server_fails_on_alone_is_parked_after_strikes_keeping_order(outbox) -> None:
    made = [outbox.add("fault", {"n": n, "poison": n == 2}) for n in range(6)]
    server = Server(Unreachable("failed on POST /v1/kiosks/events with HTTP 500"))
    for _ in range(2):  # strikes 1 and 2: the events before it go, the ones after it wait
        with pytest.raises(Unreachable):
            outbox.deliver(outbox.pending(50), server.send, probe=lambda: True, poison_strikes=3)
        assert ids(outbox.pending(50)) == ids(made[2:])
    report = outbox.deliver(outbox.pending(50), server.send, probe=lambda: True, poison_strikes=3)
    assert report.alerted == 1 and len(outbox) == 0
    assert server.applied == ids(made[:2] + made[3:])
    [alert] = outbox.alerts()
    assert (alert.alert_id, alert.status, alert.reason) == (
        made[2].event_id,
        "failed",
        "server_error",
    )
    assert "HTTP 500" in (alert.message or "")


# ---- a property: nothing is lost ----------------------------------------------------------------

STATUSES = st.sampled_from(["applied", "rejected", "conflict", "weird", None])


@settings(max_examples=40, deadline=None)
@given(rounds=st.lists(st.tuples(st.integers(0, 4), st.lists(STATUSES, max_size=6)), max_size=6))
def test_every_event_is_pending_alerted_or_applied(rounds) -> None:
    with tempfile.TemporaryDirectory() as tmp, Journal.open(tmp) as j:
        box = Outbox(j)
        made: list[str] = []
        applied: set[str] = set()
        for adds, statuses in rounds:
            made += [box.add("fault", {"i": len(made) + k}).event_id for k in range(adds)]
            batch = box.pending(len(statuses))
            results = [
                EventResult(e.event_id, s) for e, s in zip(batch, statuses, strict=False) if s
            ]
            box.settle(results)
            applied |= {r.event_id for r in results if r.status == "applied"}
        pending = ids(box.pending(1000))
        alerted = [a.alert_id for a in box.alerts()]
        assert sorted(pending + alerted + sorted(applied)) == sorted(made)
        assert pending == [i for i in made if i in set(pending)]  # still in the order made


def test_listeners_hear_each_new_event_once_it_is_durable(journal, outbox, caplog):
    heard: list[tuple[str, bool]] = []
    outbox.on_queued(
        lambda e: heard.append((e.event_id, journal.get("outbox", e.event_id) is not None))
    )
    outbox.on_queued(lambda e: 1 / 0)  # a broken listener is logged, never the adder's problem
    outbox.add("inventory", inv(1), event_id="c-1")
    outbox.add("inventory", inv(1), event_id="c-1")  # already pending: not new, not heard
    outbox.add("fault", {"what": "x"}, event_id="f-1")
    assert heard == [("c-1", True), ("f-1", True)]
    assert "outbox listener failed" in caplog.text
