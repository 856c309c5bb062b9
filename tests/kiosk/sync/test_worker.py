"""The sync worker: against the real store server on loopback, and against a stub StoreServer.

No test sleeps: time is a fake clock the worker's injected `wait` advances, cycles are run with
`run_once()` or observed through `on_cycle` and a Condition, and every wait has a timeout.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.domain.wheel import Wheel
from kiosk.errors import JournalError, KioskError, Rejected, Unreachable
from kiosk.ports import EventResult, OutboxEvent
from kiosk.storage import Journal
from kiosk.storage.outbox import EVENT_KINDS, Outbox
from kiosk.sync.client import BadResponse, RetryPolicy, StoreServerClient
from kiosk.sync.records import SyncSettings
from kiosk.sync.worker import SyncWorker
from storeserver import catalog, codes, demo, kiosks
from storeserver.clock import ManualClock
from storeserver.runner import ServerThread
from storeserver.store import Store
from tests.support.cycles import Cycles

KIOSK = "kiosk-01"
T0 = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)  # ManualClock's start


class FakeTime:
    """`monotonic` and `wait` for the worker: waiting advances the fake clock at once, and every
    requested wait is recorded. After `limit` waits it blocks (really) until woken or stopped."""

    def __init__(self, limit: int = 10**9) -> None:
        self.now = 1000.0
        self.waits: list[float] = []
        self.limit = limit
        self.reached = threading.Event()

    def monotonic(self) -> float:
        return self.now

    def wait(self, event: threading.Event, timeout: float) -> bool:
        self.waits.append(timeout)
        if len(self.waits) >= self.limit:
            self.reached.set()
            return event.wait(10)
        self.now += timeout
        return event.is_set()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal.open(tmp_path / "kiosk") as j:
        yield j


@pytest.fixture
def outbox(journal: Journal) -> Outbox:
    return Outbox(journal)


# ---- the real reference server ------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[Store]:
    s = Store(tmp_path / "store.db", clock=clock)
    s.settings.offline_member_daily_points = 2000  # this store lets a mug go offline
    demo.seed(s, [KIOSK])
    yield s
    s.close()


@pytest.fixture
def server(store: Store) -> Iterator[ServerThread]:
    with ServerThread(store, "127.0.0.1", 0) as srv:
        yield srv


@pytest.fixture
def client(server: ServerThread, store: Store, tmp_path: Path) -> Iterator[StoreServerClient]:
    with store.db.transaction() as conn:
        code = kiosks.new_enrollment_code(conn, store.clock, KIOSK)
    c = StoreServerClient(
        server.url,
        token_file=tmp_path / "kiosk" / "token",
        retry=RetryPolicy(attempts=2, base_delay_s=0.0, max_delay_s=0.0),
        sleep=lambda s: None,
        connect_timeout_s=2.0,
        read_timeout_s=5.0,
    )
    c.enroll(code, KIOSK)
    yield c
    c.close()


def balance(store: Store, member_id: str) -> int:
    return store.ledger.balance(store.db.connection(), member_id, store.today())


def server_alerts(store: Store) -> list[str]:
    return [r["kind"] for r in store.db.connection().execute("SELECT kind FROM alerts")]


def offline_spend(store: Store, member_id: str, points: int, compartment: int = 1) -> dict:
    """An offline redemption's payload, with the member code the kiosk verified offline."""
    now = int(store.clock.now().timestamp())
    return {
        "txn_id": str(uuid.uuid4()),
        "member_id": member_id,
        "sku": "GIFT-MUG",
        "points": points,
        "compartment": compartment,
        "member_code": codes.issue(store.signing_key, codes.CodeKind.MEMBER, member_id, now),
    }


def test_events_are_uploaded_and_applied_by_the_real_server(client, store, outbox) -> None:
    before = balance(store, "M0002")
    outbox.add("inventory", {"compartment": 6, "sku": "GIFT-MUG", "count": 4})
    outbox.add("offline_redemption", offline_spend(store, "M0002", 800), at=store.clock.now())
    online: list[bool] = []
    cycles = Cycles()
    worker = SyncWorker(client, outbox, on_cycle=cycles, on_online_change=online.append)
    worker.start()
    try:
        status = cycles.wait_for(lambda s: s.outbox_length == 0)
    finally:
        assert worker.stop(5)
    assert (status.online, status.alerts, status.consecutive_failures) == (True, 0, 0)
    assert online == [True] and outbox.alerts() == []
    assert balance(store, "M0002") == before - 800
    mug = next(i for i in client.catalog()["items"] if i["sku"] == "GIFT-MUG")
    assert mug["compartments"] == [{"number": 1, "stock": 2}, {"number": 6, "stock": 4}]


def test_a_conflicting_offline_redemption_ends_up_in_sync_alerts(client, store, outbox) -> None:
    wrong_price = outbox.add(
        "offline_redemption", offline_spend(store, "M0002", 700), at=store.clock.now()
    )
    too_poor = outbox.add(
        "offline_redemption", offline_spend(store, "M0005", 800), at=store.clock.now()
    )
    fine = outbox.add("fault", {"device": "printer", "detail": "paper near end"})
    worker = SyncWorker(client, outbox)
    worker.run_once()
    assert len(outbox) == 0 and worker.status().alerts == 2
    alerts = {a.alert_id: a for a in outbox.alerts()}
    assert fine.event_id not in alerts
    assert (alerts[wrong_price.event_id].status, alerts[wrong_price.event_id].reason) == (
        "conflict",
        "price_changed",
    )
    assert "costs 800 points" in (alerts[wrong_price.event_id].message or "")
    assert alerts[too_poor.event_id].reason == "insufficient_points"
    assert alerts[too_poor.event_id].event == too_poor
    assert server_alerts(store).count("offline_conflict") == 2  # the server told its staff too


def test_catalog_and_wheel_changes_are_reported_once(client, store, outbox) -> None:
    fake = FakeTime()
    catalogs: list[str] = []
    wheels: list[str] = []
    worker = SyncWorker(
        client,
        outbox,
        settings=SyncSettings(refresh_s=60, wheel_ids=("LUCKY",)),
        on_catalog=lambda c: catalogs.append(c["version"]),
        on_wheel=lambda wheel_id, info: wheels.append(info.id),
        monotonic=fake.monotonic,
    )
    assert worker.run_once() == 30  # next heartbeat first
    assert len(catalogs) == 1 and wheels == ["LUCKY"]
    first = catalogs[0]
    fake.now += 61
    worker.run_once()
    assert len(catalogs) == 1 and wheels == ["LUCKY"]  # nothing changed: no callbacks
    with store.db.transaction() as conn:  # staff restock compartment 6
        catalog.set_compartment(conn, KIOSK, 6, "GIFT-MUG", 9)
    worker.run_once()  # not due yet
    assert len(catalogs) == 1
    fake.now += 61
    worker.run_once()
    assert len(catalogs) == 2 and catalogs[1] != first
    assert worker.status().catalog_version == catalogs[1]
    fake.now += 61
    worker.run_once()
    assert len(catalogs) == 2 and wheels == ["LUCKY"]


def test_heartbeat_estimates_clock_skew_against_the_servers_clock(
    client, store, clock, outbox, caplog
) -> None:
    fake = FakeTime()
    kiosk_clock = T0.timestamp()  # the kiosk agrees with the server at first
    healths: list[dict] = []
    worker = SyncWorker(
        client,
        outbox,
        health_provider=lambda: {"printer": "ok", "paper": float("nan")},
        clock=lambda: kiosk_clock,
        monotonic=fake.monotonic,
    )
    worker.run_once()
    assert worker.status().clock_skew_s == 0.0
    row = store.db.connection().execute("SELECT health FROM kiosks WHERE id = ?", (KIOSK,))
    healths.append(row.fetchone()["health"])
    assert '"paper": null' in healths[0] and '"outbox": 0' in healths[0]  # NaN sent as null
    clock.advance(seconds=120)  # the server's clock moves ahead; the kiosk's does not
    fake.now += 31
    with caplog.at_level(logging.WARNING, logger="kiosk.sync.heartbeat"):
        worker.run_once()
    assert worker.status().clock_skew_s == 120.0
    assert "120.0 s behind" in caplog.text and "NTP" in caplog.text


def test_a_poison_event_is_isolated_by_the_real_server(client, journal) -> None:
    outbox = Outbox(journal, kinds=EVENT_KINDS | {"selfie"})  # a kind this server does not know
    good = [outbox.add("fault", {"n": n}) for n in range(5)]
    poison = outbox.add("selfie", {"n": 5})
    later = outbox.add("fault", {"n": 6})
    SyncWorker(client, outbox).run_once()
    assert len(outbox) == 0
    [alert] = outbox.alerts()
    assert (alert.alert_id, alert.status, alert.reason) == (
        poison.event_id,
        "rejected",
        "invalid_request",
    )
    assert "kind" in (alert.message or "")
    assert all(e.event_id != alert.alert_id for e in [*good, later])


def test_a_stopped_server_makes_the_worker_go_offline(store, client, outbox, server) -> None:
    online: list[bool] = []
    worker = SyncWorker(client, outbox, on_online_change=online.append, rng=random.Random(1))
    worker.run_once()
    server.stop()
    outbox.add("fault", {"device": "camera"})
    delay = worker.run_once()
    status = worker.status()
    assert online == [True, False] and not status.online
    assert status.consecutive_failures == 1 and 0.5 <= delay <= 1.0
    assert "refused the connection" in (status.last_error or "")
    assert status.outbox_length == 1  # kept for later


# ---- a stub StoreServer -------------------------------------------------------------------------


@dataclass
class Stub:
    """Implements the StoreServer methods the worker uses; each may be told to fail."""

    fail: dict[str, Callable[[], Any]] = field(default_factory=dict)
    sent: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    server_time: str = "2026-11-23T02:00:00+00:00"
    version: str = "v1"

    def _maybe(self, name: str) -> Any:
        self.calls.append(name)
        if name in self.fail:
            return self.fail[name]()
        return None

    def health(self) -> dict[str, Any]:
        return self._maybe("health") or {"status": "ok"}

    def heartbeat(self, health) -> dict[str, Any]:
        return self._maybe("heartbeat") or {"server_time": self.server_time}

    def catalog(self) -> dict[str, Any]:
        return self._maybe("catalog") or {"version": self.version, "items": []}

    def wheel_info(self, wheel_id: str, member_id: str | None = None) -> Wheel:
        return self._maybe("wheel_info") or Wheel(wheel_id, "转盘", "Wheel", 100, 3, ())

    def send_events(self, events: list[OutboxEvent]) -> list[EventResult]:
        got = self._maybe("send_events")
        if got is not None:
            return got
        if any(e.payload.get("poison") for e in events):
            raise Rejected(422, "invalid_request", "store server refused: events.0.payload: bad")
        self.sent.extend(e.event_id for e in events)
        return [EventResult(e.event_id, "applied") for e in events]


def raises(exc: BaseException) -> Callable[[], Any]:
    def go() -> Any:
        raise exc

    return go


def returns(value: Any) -> Callable[[], Any]:
    return lambda: value


DOWN = Unreachable("store server 10.0.0.5:8080 refused the connection: check that it is running")


def test_backoff_grows_with_jitter_and_is_capped(outbox) -> None:
    stub = Stub(fail={"heartbeat": raises(DOWN)})
    fake = FakeTime(limit=12)
    online: list[bool] = []
    s = SyncSettings(backoff_base_s=1.0, backoff_cap_s=20.0)
    worker = SyncWorker(
        stub,
        outbox,
        settings=s,
        monotonic=fake.monotonic,
        wait=fake.wait,
        rng=random.Random(3),
        on_online_change=online.append,
    )
    worker.start()
    try:
        assert fake.reached.wait(5)
        status = worker.status()
    finally:
        assert worker.stop(5)
    assert online == [False] and status.consecutive_failures == 12
    for n, waited in enumerate(fake.waits, start=1):
        ceiling = min(20.0, 2.0 ** (n - 1))
        assert ceiling / 2 <= waited <= ceiling, (n, waited)
    assert max(fake.waits[6:]) <= 20.0 and min(fake.waits[6:]) >= 10.0  # capped from the 6th
    assert len(set(fake.waits)) == len(fake.waits)  # jittered
    stub.fail.clear()  # the server is back
    assert worker.run_once() == 30.0
    assert worker.status().consecutive_failures == 0 and online == [False, True]


FAILURES: list[Callable[[], Any]] = [
    raises(DOWN),
    raises(BadResponse("store server answered garbage to GET /v1/catalog")),
    raises(Rejected(401, "bad_token", "unknown kiosk token: re-enroll the kiosk")),
    raises(Rejected(422, "invalid_request", "body: invalid")),
    raises(Rejected(404, "not_found", "Not Found")),
    raises(ValueError("a bug")),
    raises(KeyError("server_time")),
    raises(RecursionError()),
    raises(JournalError("disk full")),
    raises(KioskError("something")),
    returns([1, 2, 3]),
    returns("garbage"),
    returns({"server_time": "yesterday", "version": 7}),
    returns({"server_time": 12, "version": ""}),
    returns([EventResult("nope", "applied")]),
    returns(42),
]


def test_no_failure_of_any_method_kills_the_thread(outbox) -> None:
    """Every method and callback fails in every way in turn; the thread keeps cycling."""
    events = [outbox.add("fault", {"n": n}) for n in range(3)]
    turn = iter(range(10**6))

    def next_failure() -> Any:
        return FAILURES[next(turn) % len(FAILURES)]()

    stub = Stub(
        fail={
            m: next_failure for m in ("health", "heartbeat", "catalog", "wheel_info", "send_events")
        }
    )

    def callback(*args: Any) -> None:
        next_failure()

    fake = FakeTime(limit=len(FAILURES) * 6)
    worker = SyncWorker(
        stub,
        outbox,
        settings=SyncSettings(wheel_ids=("LUCKY",)),
        health_provider=lambda: next_failure(),
        on_catalog=callback,
        on_wheel=callback,
        on_online_change=callback,
        on_cycle=callback,
        monotonic=fake.monotonic,
        wait=fake.wait,
        rng=random.Random(5),
    )
    worker.start()
    try:
        assert fake.reached.wait(10)
        status = worker.status()
        assert status.running and status.unexpected_errors > 0
    finally:
        assert worker.stop(5)
    assert not worker.status().running
    # nothing was lost: whatever is not pending was applied, or refused alone with a 422
    pending = {e.event_id for e in outbox.pending(10)}
    alerted = {a.alert_id: (a.status, a.reason) for a in outbox.alerts()}
    assert pending | set(alerted) | set(stub.sent) == {e.event_id for e in events}
    assert set(alerted.values()) <= {("rejected", "invalid_request")}


GARBAGE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3)
    ),
    max_leaves=8,
)
ANSWERS = st.one_of(
    st.sampled_from(FAILURES),
    GARBAGE.map(returns),
    st.fixed_dictionaries(
        {"server_time": st.text(max_size=30), "version": st.text(max_size=5)}
    ).map(returns),
    st.lists(st.builds(EventResult, st.text(max_size=5), st.text(max_size=9)), max_size=3).map(
        returns
    ),
)
METHODS = ("health", "heartbeat", "catalog", "wheel_info", "send_events")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=st.lists(st.dictionaries(st.sampled_from(METHODS), ANSWERS), min_size=1, max_size=5))
def test_any_server_answer_is_survived_and_loses_no_event(script) -> None:
    with tempfile.TemporaryDirectory() as tmp, Journal.open(tmp) as j:
        box = Outbox(j)
        made = {box.add("fault", {"n": n}).event_id for n in range(3)}
        stub = Stub()
        fake = FakeTime()
        worker = SyncWorker(
            stub,
            box,
            settings=SyncSettings(wheel_ids=("LUCKY",)),
            monotonic=fake.monotonic,
            rng=random.Random(0),
        )
        for answers in script:
            stub.fail = answers
            delay = worker.run_once()  # never raises
            assert 0 <= delay <= 60
            fake.now += delay
        pending = {e.event_id for e in box.pending(10)}
        alerted = {a.alert_id for a in box.alerts()}
        assert pending | alerted | set(stub.sent) >= made  # nothing vanished without an answer
        assert not pending & alerted


def test_poison_event_is_isolated_and_the_rest_flow_in_order(outbox) -> None:
    made = [outbox.add("fault", {"n": n, "poison": n == 6}) for n in range(10)]
    stub = Stub()
    worker = SyncWorker(stub, outbox)
    worker.run_once()
    assert stub.sent == [e.event_id for e in made if e.event_id != made[6].event_id]
    [alert] = outbox.alerts()
    assert (alert.alert_id, alert.status) == (made[6].event_id, "rejected")
    assert "events.0.payload: bad" in (alert.message or "")
    status = worker.status()
    assert status.online and status.consecutive_failures == 0 and status.alerts == 1


def test_an_event_the_server_crashes_on_is_parked_after_three_cycles(outbox) -> None:
    made = [outbox.add("fault", {"n": n, "crash": n == 1}) for n in range(4)]
    stub = Stub()
    real_send = stub.send_events

    def send(events: list[OutboxEvent]) -> list[EventResult]:
        if any(e.payload.get("crash") for e in events):
            raise Unreachable("store server failed on POST /v1/kiosks/events with HTTP 500")
        return real_send(events)

    stub.send_events = send  # type: ignore[method-assign]
    worker = SyncWorker(stub, outbox, rng=random.Random(0))
    for _ in range(2):
        worker.run_once()
        assert worker.status().consecutive_failures > 0 and len(outbox) == 3
    worker.run_once()
    assert stub.sent == [made[0].event_id, made[2].event_id, made[3].event_id]
    assert [(a.alert_id, a.status) for a in outbox.alerts()] == [(made[1].event_id, "failed")]
    assert worker.status().consecutive_failures == 0


def test_outbox_order_survives_a_journal_reopen(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        made = [Outbox(j).add("inventory", {"compartment": n, "count": n}) for n in range(1, 8)]
    stub = Stub()
    with Journal.open(tmp_path) as j:
        box = Outbox(j)
        made.append(box.add("fault", {}))
        SyncWorker(stub, box, settings=SyncSettings(batch_size=3)).run_once()
        assert len(box) == 0
    assert stub.sent == [e.event_id for e in made]
    assert stub.calls.count("send_events") == 3


def test_wake_drains_at_once_and_the_worker_restarts_after_stop(outbox) -> None:
    stub = Stub()
    cycles = Cycles()
    catalogs: list[dict] = []
    worker = SyncWorker(
        stub,
        outbox,
        settings=SyncSettings(heartbeat_s=3600, refresh_s=3600),
        on_cycle=cycles,
        on_catalog=catalogs.append,
    )
    worker.start()
    try:
        cycles.wait_for(lambda s: s.online)
        mark = cycles.mark()
        first = outbox.add("fault", {"n": 1})
        worker.wake()  # the real wait is an hour: only wake() gets it sent now
        cycles.wait_for(lambda s: s.outbox_length == 0, since=mark)
        assert stub.sent == [first.event_id]
    finally:
        assert worker.stop(5)
    assert not worker.status().running
    second = outbox.add("fault", {"n": 2})
    mark = cycles.mark()
    worker.start()  # again, with its state kept
    try:
        cycles.wait_for(lambda s: s.outbox_length == 0, since=mark)
    finally:
        assert worker.stop(5)
    assert stub.sent == [first.event_id, second.event_id]
    assert len(catalogs) == 1  # re-read after each upload, but it did not change
    assert stub.calls.count("catalog") == 3 and stub.calls.count("heartbeat") == 1


def test_wake_does_not_cut_a_backoff_short_unless_forced(outbox) -> None:
    stub = Stub(fail={"heartbeat": raises(DOWN)})
    cycles = Cycles()
    worker = SyncWorker(stub, outbox, settings=SyncSettings(backoff_base_s=3600), on_cycle=cycles)
    worker.start()
    try:
        cycles.wait_for(lambda s: s.consecutive_failures == 1)
        mark = cycles.mark()
        worker.wake()
        with pytest.raises(AssertionError, match="no cycle matched"):  # a negative: bounded
            cycles.wait_for(lambda s: True, since=mark, timeout=0.2)
        stub.fail.clear()
        worker.wake(force=True)  # a technician's "retry now"
        status = cycles.wait_for(lambda s: s.consecutive_failures == 0, since=mark)
        assert status.online and status.next_attempt_in_s is not None
    finally:
        assert worker.stop(5)
    assert stub.calls.count("heartbeat") == 2


def test_a_failing_catalog_callback_backs_off_and_gets_the_catalog_again(outbox, caplog) -> None:
    stub = Stub()
    seen: list[str] = []

    def on_catalog(c: dict) -> None:
        seen.append(c["version"])
        if len(seen) == 1:
            raise RuntimeError("widget exploded")

    worker = SyncWorker(stub, outbox, on_catalog=on_catalog, rng=random.Random(0))
    with caplog.at_level(logging.ERROR, logger="kiosk.sync.worker"):
        worker.run_once()
    status = worker.status()
    assert status.consecutive_failures == 1 and status.unexpected_errors == 1
    assert status.online  # the server is fine; the kiosk's own callback failed
    assert status.catalog_version is None and "on_catalog callback failed" in (
        status.last_error or ""
    )
    assert "Traceback" in caplog.text and "widget exploded" in caplog.text
    worker.run_once()
    assert seen == ["v1", "v1"] and worker.status().catalog_version == "v1"


def test_a_missing_wheel_is_a_config_problem_not_an_outage(outbox) -> None:
    stub = Stub(fail={"wheel_info": raises(Rejected(404, "unknown_wheel", "no wheel 'LUCK'"))})
    worker = SyncWorker(stub, outbox, settings=SyncSettings(wheel_ids=("LUCK",)))
    worker.run_once()
    status = worker.status()
    assert status.online and status.consecutive_failures == 0
    assert "wheel LUCK is not on the store server" in (status.last_error or "")


def test_a_broken_health_provider_still_heartbeats(outbox) -> None:
    sent: list[dict] = []
    stub = Stub()
    stub.heartbeat = lambda health: sent.append(health) or {"server_time": stub.server_time}  # type: ignore[method-assign]

    def broken() -> dict:
        raise OSError("vcgencmd not found")

    worker = SyncWorker(stub, outbox, health_provider=broken)
    worker.run_once()
    assert sent[0]["health_error"] == "OSError: vcgencmd not found"
    assert sent[0]["sync"]["outbox"] == 0
    assert worker.status().online and worker.status().unexpected_errors == 1


def test_an_unexpected_exception_is_logged_with_traceback_and_counted(outbox, caplog) -> None:
    stub = Stub()
    worker = SyncWorker(stub, outbox, rng=random.Random(0))

    def broken(limit: int) -> list[OutboxEvent]:
        raise AttributeError("a bug in the kiosk")

    outbox.pending = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="kiosk.sync.worker"):
        delay = worker.run_once()
    status = worker.status()
    assert (status.unexpected_errors, status.consecutive_failures) == (1, 1)
    assert 0.5 <= delay <= 1.0 and status.last_error == "a bug in the kiosk"
    assert "Traceback" in caplog.text and "AttributeError" in caplog.text
    assert status.online  # the heartbeat got through: the bug is the kiosk's


def test_a_retry_after_from_the_server_is_honoured(outbox) -> None:
    busy = Rejected(429, "slow_down", "store server refused POST /v1/kiosks/heartbeat: busy")
    busy.retry_after_s = 45  # type: ignore[attr-defined]  # as the client's RetryLater carries
    worker = SyncWorker(Stub(fail={"heartbeat": raises(busy)}), outbox, rng=random.Random(0))
    assert worker.run_once() == 45


def test_a_conflict_reads_the_catalog_again_at_once(outbox) -> None:
    """The server counted the conflicting offline gift out of its stock: the kiosk's screens
    need that catalog now, not at the next hourly poll."""
    stub = Stub()
    worker = SyncWorker(stub, outbox, settings=SyncSettings(heartbeat_s=3600, refresh_s=3600))
    worker.run_once()  # the first cycle reads the catalog; the next read is an hour away
    assert stub.calls.count("catalog") == 1
    event = outbox.add("offline_redemption", {"txn_id": "t1", "compartment": 2})
    stub.fail["send_events"] = lambda: [EventResult(event.event_id, "conflict", "x", "y")]
    worker.run_once()
    assert [a.alert_id for a in outbox.alerts()] == [event.event_id]
    assert stub.calls.count("catalog") == 2  # read again right after the conflict


# ---- the store's public keys (key rotation) -----------------------------------------------------

KEY_A, KEY_B = "A" * 43 + "=", "B" * 43 + "="


def beat_with(keys: object) -> Callable[[], Any]:
    return returns({"server_time": "2026-11-23T02:00:00+00:00", "public_keys": keys})


def test_public_keys_reach_on_keys_only_when_they_change(outbox) -> None:
    got: list[tuple[str, ...]] = []
    stub = Stub(fail={"heartbeat": beat_with([KEY_A])})
    worker = SyncWorker(stub, outbox, on_keys=got.append, settings=SyncSettings(heartbeat_s=0))
    worker.run_once()
    worker.run_once()
    stub.fail["heartbeat"] = beat_with([KEY_B, KEY_A])
    worker.run_once()
    assert got == [(KEY_A,), (KEY_B, KEY_A)]


def test_a_server_without_public_keys_leaves_the_keys_alone(outbox) -> None:
    got: list[tuple[str, ...]] = []
    worker = SyncWorker(Stub(), outbox, on_keys=got.append)
    worker.run_once()
    assert got == [] and worker.status().last_error is None


@pytest.mark.parametrize("keys", [[], "AAAA", ["c2hvcnQ="], [KEY_A] * 5, [7]])
def test_unusable_public_keys_fail_the_cycle(outbox, keys) -> None:
    got: list[tuple[str, ...]] = []
    worker = SyncWorker(Stub(fail={"heartbeat": beat_with(keys)}), outbox, on_keys=got.append)
    worker.run_once()
    assert got == [] and "unusable public_keys" in (worker.status().last_error or "")


def test_keys_a_failed_on_keys_did_not_take_are_offered_again(outbox) -> None:
    calls: list[tuple[str, ...]] = []

    def on_keys(keys: tuple[str, ...]) -> None:
        calls.append(keys)
        if len(calls) == 1:
            raise JournalError("disk full")

    stub = Stub(fail={"heartbeat": beat_with([KEY_A])})
    worker = SyncWorker(stub, outbox, on_keys=on_keys, settings=SyncSettings(heartbeat_s=0))
    worker.run_once()
    assert worker.status().consecutive_failures == 1
    worker.run_once()
    assert calls == [(KEY_A,), (KEY_A,)] and worker.status().consecutive_failures == 0


# ---- the revoked staff list (kiosk/sync/heartbeat.py revoked_staff) ------------------------------


def test_the_revoked_staff_list_is_passed_on_when_its_version_changes(outbox) -> None:
    stub, fake, got = Stub(), FakeTime(), []
    listed = {"version": "a1", "ids": ["S0003"]}
    stub.fail["heartbeat"] = lambda: {"server_time": stub.server_time, "revoked_staff": listed}
    worker = SyncWorker(stub, outbox, monotonic=fake.monotonic, on_revoked_staff=got.append)
    worker.run_once()
    fake.now += worker.settings.heartbeat_s
    worker.run_once()  # the same version: not again
    assert [(r.version, r.staff_ids) for r in got] == [("a1", frozenset({"S0003"}))]
    listed = {"version": "b2", "ids": []}
    fake.now += worker.settings.heartbeat_s
    worker.run_once()
    assert [r.version for r in got] == ["a1", "b2"] and got[-1].staff_ids == frozenset()


def test_a_failed_revoked_staff_callback_gets_the_list_again(outbox) -> None:
    stub, fake, got = Stub(), FakeTime(), []
    answer = {"server_time": stub.server_time, "revoked_staff": {"version": "a1", "ids": []}}
    stub.fail["heartbeat"] = lambda: answer

    def flaky(revoked) -> None:
        got.append(revoked.version)
        if len(got) == 1:
            raise OSError("journal full")

    worker = SyncWorker(stub, outbox, monotonic=fake.monotonic, on_revoked_staff=flaky)
    worker.run_once()
    assert worker.status().consecutive_failures == 1
    worker.run_once()
    assert got == ["a1", "a1"] and worker.status().consecutive_failures == 0


def test_a_garbled_revoked_staff_list_fails_the_cycle(outbox) -> None:
    stub, got = Stub(), []
    answer = {"server_time": stub.server_time, "revoked_staff": {"version": "x", "ids": "S1"}}
    stub.fail["heartbeat"] = lambda: answer
    worker = SyncWorker(stub, outbox, on_revoked_staff=got.append)
    worker.run_once()
    status = worker.status()
    assert got == [] and status.consecutive_failures == 1
    assert "revoked_staff" in (status.last_error or "")
