"""The fault proxy, between the real StoreServerClient and the real reference store server.

Loopback only, port 0; retries do not sleep (a recording sleep), and the only real waits are
read timeouts of 0.3 s against delays of 1 s. No test asserts on elapsed time.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from kiosk.errors import Rejected, Unreachable
from kiosk.ports import RedemptionState
from kiosk.sync.client import BadResponse, RetryPolicy, StoreServerClient
from storeserver import demo, kiosks, member_sessions, members
from storeserver.clock import ManualClock
from storeserver.runner import ServerThread
from storeserver.store import Store
from tests.support.fault_proxy import Action, Fault, FaultProxy, Garbage, Seen

KIOSK = "kiosk-01"
MEMBER = "M0002"  # 2700 points in the demo seed
ATTEMPTS = 3
REDEMPTIONS = r"/v1/redemptions"
SESSIONS: dict[str, str] = {}  # member -> the kiosk's session for them (the client fixture)


def new_txn() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    s = Store(tmp_path / "store.db", clock=ManualClock())
    demo.seed(s, [KIOSK])
    yield s
    s.close()


@pytest.fixture
def server(store) -> Iterator[ServerThread]:
    with ServerThread(store, "127.0.0.1", 0) as srv:
        yield srv


@pytest.fixture
def proxy(server) -> Iterator[FaultProxy]:
    with FaultProxy(server.host, server.port) as p:
        yield p


def make_client(url: str, tmp_path: Path, **kw) -> StoreServerClient:
    kw.setdefault("retry", RetryPolicy(attempts=ATTEMPTS, base_delay_s=0.01, max_delay_s=0.05))
    kw.setdefault("sleep", lambda s: None)
    kw.setdefault("rng", random.Random(7))
    kw.setdefault("connect_timeout_s", 1.0)
    kw.setdefault("read_timeout_s", 2.0)
    return StoreServerClient(url, token_file=tmp_path / "state" / "token", **kw)


@pytest.fixture
def client(proxy, store, tmp_path) -> Iterator[StoreServerClient]:
    """Enrolled through the proxy (a pass-through POST without a token)."""
    c = make_client(proxy.url, tmp_path)
    with store.db.transaction() as conn:
        code = kiosks.new_enrollment_code(conn, store.clock, KIOSK)
    c.enroll(code, KIOSK)
    # holds and a member's spins need the session of a resolved code: made on the server
    # directly, so the proxy sees only the calls under test; any client of this kiosk sends it
    SESSIONS.clear()
    SESSIONS.update({m: member_session(store, m) for m in (MEMBER, "M0003")})
    proxy.clear_seen()
    yield c
    c.close()


def member_session(store: Store, member_id: str) -> str:
    """The session a kiosk gets when it resolves the member's code (member_sessions.py)."""
    with store.db.transaction() as conn:
        code = members.issue_code(store.ledger, conn, store.signing_key, member_id)["code"]
        parsed = members.resolve_code(store.ledger, conn, store.verify_keys, KIOSK, code)
        opened = member_sessions.open_session(
            conn, store.clock.now(), KIOSK, member_id, parsed.nonce, 3600
        )
    return opened["token"]


def balance(store: Store, member_id: str = MEMBER) -> int:
    with store.db.transaction() as conn:
        return store.ledger.balance(conn, member_id, store.ledger.today())


def holds(store: Store, txn_id: str) -> tuple[int, int]:
    """(redemption rows, lot allocations) of a transaction on the server."""
    with store.db.transaction() as conn:
        rows = conn.execute("SELECT COUNT(*) FROM redemptions WHERE txn_id = ?", (txn_id,))
        allocs = conn.execute("SELECT COUNT(*) FROM hold_allocations WHERE txn_id = ?", (txn_id,))
        return rows.fetchone()[0], allocs.fetchone()[0]


def stock(store: Store, compartment: int = 2) -> int:
    with store.db.transaction() as conn:
        row = conn.execute(
            "SELECT stock FROM compartments WHERE kiosk_id = ? AND number = ?",
            (KIOSK, compartment),
        ).fetchone()
        return row[0]


def hold_tote(client: StoreServerClient, txn: str):
    return client.create_redemption(
        txn, MEMBER, "GIFT-TOTE", 300, compartment=2, member_session=SESSIONS[MEMBER]
    )


def actions(proxy: FaultProxy) -> list[Action | None]:
    return [s.action for s in proxy.seen]


def assert_held_once(store: Store, txn: str, stock_before: int) -> None:
    assert holds(store, txn) == (1, 1)
    assert balance(store) == 2700 - 300
    assert stock(store) == stock_before - 1


# ---- pass-through ---------------------------------------------------------------------------


def test_get_and_post_pass_through_on_one_keep_alive_connection(client, proxy, store):
    txn = new_txn()
    assert client.health()["status"] == "ok"  # GET, no token
    assert any(i["sku"] == "GIFT-TOTE" for i in client.catalog()["items"])  # GET with a token
    held = hold_tote(client, txn)  # POST with a JSON body
    assert (held.state, held.points, held.balance) == (RedemptionState.HELD, 300, 2400)
    assert balance(store) == 2400
    assert proxy.seen == [
        Seen("GET", "/v1/health", "", None, None, True, 200, 200, True),
        Seen("GET", "/v1/catalog", "", None, None, True, 200, 200, True),
        Seen("POST", "/v1/redemptions", "", None, None, True, 200, 200, True),
    ]
    assert proxy.connections_accepted == 1  # enrollment and the three calls: one connection


def test_query_strings_and_error_answers_pass_through_unchanged(client, proxy, tmp_path):
    info = client.wheel_info("LUCKY", "M0003", SESSIONS["M0003"])
    assert info.spins_left is not None  # the query string reached the server
    assert proxy.seen[-1].query == "member_id=M0003"
    stranger = make_client(proxy.url, tmp_path / "other", token="not-a-token")
    with pytest.raises(Rejected) as caught:  # the server's 401 body, intact
        stranger.catalog()
    assert caught.value.status == 401
    stranger.close()


def test_a_chunked_request_body_is_forwarded(client, proxy, store):
    with store.db.transaction() as conn:
        code = members.issue_code(store.ledger, conn, store.signing_key, MEMBER)["code"]
    body = f'{{"code": "{code}"}}'.encode()
    resp = client.session.post(  # requests sends a generator with Transfer-Encoding: chunked
        proxy.url + "/v1/members/resolve",
        data=iter([body[:7], body[7:]]),
        headers={"Content-Type": "application/json"},
        timeout=2,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["member_id"] == MEMBER


def test_the_proxy_answers_502_when_the_server_is_down(tmp_path):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    try:
        with FaultProxy("127.0.0.1", closed.getsockname()[1], upstream_timeout_s=1) as proxy:
            c = make_client(proxy.url, tmp_path)
            with pytest.raises(Unreachable, match="HTTP 502"):
                c.health()
            assert [(s.forwarded, s.upstream_status, s.status) for s in proxy.seen] == [
                (True, None, 502)
            ] * ATTEMPTS
            c.close()
    finally:
        closed.close()


# ---- drops ----------------------------------------------------------------------------------


def test_drop_before_every_time_is_unreachable_and_the_server_never_saw_it(client, proxy, store):
    txn, before = new_txn(), stock(store)
    proxy.add_rule(Fault(Action.DROP_BEFORE, "POST", REDEMPTIONS))
    with pytest.raises(Unreachable) as caught:
        hold_tote(client, txn)
    assert not isinstance(caught.value, BadResponse)
    assert actions(proxy) == [Action.DROP_BEFORE] * ATTEMPTS
    assert not any(s.forwarded for s in proxy.seen)
    assert holds(store, txn) == (0, 0)
    assert (balance(store), stock(store)) == (2700, before)


def test_drop_before_once_is_hidden_by_the_retry(client, proxy, store):
    txn, before = new_txn(), stock(store)
    proxy.add_rule(Fault(Action.DROP_BEFORE, "POST", REDEMPTIONS, nth=1))
    assert hold_tote(client, txn).balance == 2400
    assert actions(proxy) == [Action.DROP_BEFORE, None]
    assert_held_once(store, txn, before)


def test_drop_after_once_the_retry_gets_the_same_hold_and_points_are_held_once(
    client, proxy, store
):
    txn, before = new_txn(), stock(store)
    proxy.add_rule(Fault(Action.DROP_AFTER, "POST", REDEMPTIONS, nth=1))
    held = hold_tote(client, txn)
    assert [(s.action, s.forwarded, s.upstream_status, s.status) for s in proxy.seen] == [
        (Action.DROP_AFTER, True, 200, None),
        (None, True, 200, 200),
    ]
    assert (held.txn_id, held.state, held.balance) == (txn, RedemptionState.HELD, 2400)
    assert client.get_redemption(txn) == held
    assert_held_once(store, txn, before)


def test_drop_after_every_time_is_unreachable_but_the_server_held_once(client, proxy, store):
    txn, before = new_txn(), stock(store)
    proxy.add_rule(Fault(Action.DROP_AFTER, "POST", REDEMPTIONS))
    with pytest.raises(Unreachable):
        hold_tote(client, txn)
    assert actions(proxy) == [Action.DROP_AFTER] * ATTEMPTS
    assert all(s.forwarded and s.upstream_status == 200 for s in proxy.seen)
    assert_held_once(store, txn, before)
    proxy.clear()  # the kiosk's recovery asks again with the same txn_id
    assert hold_tote(client, txn).balance == 2400
    assert_held_once(store, txn, before)


# ---- delays ---------------------------------------------------------------------------------


def test_a_delay_past_the_read_timeout_is_unreachable_then_the_retry_passes(
    proxy, client, tmp_path
):
    slow = make_client(proxy.url, tmp_path, token=client.token, read_timeout_s=0.3)
    proxy.add_rule(Fault(Action.DELAY, "GET", "/v1/catalog", nth=1, delay_s=1.0))
    assert slow.catalog()["items"]
    assert actions(proxy) == [Action.DELAY, None]
    proxy.add_rule(Fault(Action.DELAY, "GET", "/v1/health", times=ATTEMPTS, delay_s=1.0))
    with pytest.raises(Unreachable, match="did not answer"):
        slow.health()  # both attempts delayed
    slow.close()


def test_a_delay_after_the_server_applied_the_hold_retries_to_the_same_hold(
    proxy, client, store, tmp_path
):
    slow = make_client(proxy.url, tmp_path, token=client.token, read_timeout_s=0.3)
    txn, before = new_txn(), stock(store)
    proxy.add_rule(Fault(Action.DELAY, "POST", REDEMPTIONS, nth=1, delay_s=1.0, after_server=True))
    assert hold_tote(slow, txn).balance == 2400
    assert [(s.action, s.forwarded) for s in proxy.seen] == [(Action.DELAY, True), (None, True)]
    assert_held_once(store, txn, before)
    slow.close()


# ---- error statuses -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_before_the_server_is_unreachable_after_the_retries(client, proxy, status):
    proxy.add_rule(Fault(Action.STATUS, "GET", "/v1/catalog", status=status))
    with pytest.raises(Unreachable, match=f"HTTP {status} \\(after {ATTEMPTS} attempts\\)"):
        client.catalog()
    assert [(s.action, s.forwarded, s.status) for s in proxy.seen] == [
        (Action.STATUS, False, status)
    ] * ATTEMPTS


def test_a_502_after_the_server_held_retries_to_the_same_hold(client, proxy, store):
    txn, before = new_txn(), stock(store)
    proxy.add_rule(Fault(Action.STATUS, "POST", REDEMPTIONS, nth=1, status=502, after_server=True))
    assert hold_tote(client, txn).balance == 2400
    assert [(s.action, s.upstream_status, s.status) for s in proxy.seen] == [
        (Action.STATUS, 200, 502),
        (None, 200, 200),
    ]
    assert_held_once(store, txn, before)


# ---- garbage --------------------------------------------------------------------------------


@pytest.mark.parametrize("garbage", [Garbage.NOT_JSON, Garbage.WRONG_SHAPE])
def test_garbage_is_a_bad_response_and_not_retried(client, proxy, garbage):
    proxy.add_rule(Fault(Action.GARBAGE, "GET", "/v1/catalog", garbage=garbage))
    with pytest.raises(BadResponse, match="garbage"):
        client.catalog()
    assert actions(proxy) == [Action.GARBAGE]
    assert client.health()["status"] == "ok"  # the connection stays usable


def test_a_truncated_body_is_a_bad_response_after_the_retries(client, proxy):
    proxy.add_rule(Fault(Action.GARBAGE, "GET", "/v1/catalog", garbage=Garbage.TRUNCATED))
    with pytest.raises(BadResponse, match="broken answer"):
        client.catalog()
    assert actions(proxy) == [Action.GARBAGE] * ATTEMPTS


def test_a_truncated_hold_answer_retries_to_the_same_hold(client, proxy, store):
    txn, before = new_txn(), stock(store)
    fault = Fault(
        Action.GARBAGE, "POST", REDEMPTIONS, nth=1, garbage=Garbage.TRUNCATED, after_server=True
    )
    proxy.add_rule(fault)
    assert hold_tote(client, txn).balance == 2400
    assert [s.fault for s in proxy.seen] == [fault, None]
    assert_held_once(store, txn, before)


# ---- partition ------------------------------------------------------------------------------


def test_a_partition_refuses_connections_until_healed(client, proxy):
    assert client.health()["status"] == "ok"
    port = proxy.port
    proxy.partition()
    assert proxy.partitioned
    with pytest.raises(Unreachable, match="refused the connection"):
        client.health()  # the pooled connection was cut, and new ones are refused
    with pytest.raises(Unreachable, match="refused the connection"):
        client.catalog()
    assert len(proxy.seen) == 1  # nothing got through
    proxy.heal()
    assert (proxy.port, proxy.partitioned) == (port, False)
    assert client.catalog()["items"]
    assert len(proxy.seen) == 2


# ---- rules ----------------------------------------------------------------------------------


def test_rules_pick_by_method_and_whole_path_and_count_nth_and_times(client, proxy, store):
    txn = new_txn()
    proxy.add_rule(Fault(Action.STATUS, "GET", REDEMPTIONS, status=500))  # never matches: method
    proxy.add_rule(Fault(Action.STATUS, "POST", REDEMPTIONS, status=500, nth=2))
    hold_tote(client, txn)  # matching request 1: passes
    client.capture(txn)  # /v1/redemptions/<id>/capture: not a whole-path match
    hold_tote(client, new_txn())  # matching request 2 answers 500; its retry (3) passes
    assert actions(proxy) == [None, None, Action.STATUS, None]
    proxy.clear()
    proxy.clear_seen()
    proxy.add_rule(Fault(Action.STATUS, "GET", "/v1/health", status=503, times=2))
    assert client.health()["status"] == "ok"  # two 503s, then the third attempt passes
    assert actions(proxy) == [Action.STATUS, Action.STATUS, None]
    assert client.health()["status"] == "ok"
    assert actions(proxy)[-1] is None


def test_the_first_firing_rule_wins_and_clear_removes_every_rule(client, proxy):
    first = proxy.add_rule(Fault(Action.GARBAGE, path="/v1/health", nth=1))
    proxy.add_rule(Fault(Action.DROP_BEFORE, path="/v1/health", nth=1))  # counted, not fired
    with pytest.raises(BadResponse):
        client.health()
    assert [s.fault for s in proxy.seen] == [first]
    proxy.add_rule(Fault(Action.DROP_BEFORE))
    proxy.clear()
    assert client.health()["status"] == "ok"


def test_a_probability_follows_the_seed(server, tmp_path):
    def pattern(seed: int) -> list[bool]:
        with FaultProxy(server.host, server.port) as proxy:
            proxy.add_rule(Fault(Action.STATUS, "GET", "/v1/health", probability=0.5, seed=seed))
            c = make_client(proxy.url, tmp_path, retry=RetryPolicy(attempts=1))
            for _ in range(24):
                with contextlib.suppress(Unreachable):
                    c.health()
            c.close()
            return [s.action is Action.STATUS for s in proxy.seen]

    rng = random.Random(11)
    expected = [rng.random() < 0.5 for _ in range(24)]
    assert pattern(11) == expected
    assert any(expected) and not all(expected)
    assert pattern(12) != expected


@pytest.mark.parametrize(
    "kw",
    [
        {"path": "("},
        {"nth": 0},
        {"times": -1},
        {"probability": 1.5},
        {"delay_s": -1},
        {"status": 42},
        {"after_server": True},
    ],
)
def test_a_fault_that_makes_no_sense_is_refused(kw):
    with pytest.raises(ValueError):
        Fault(Action.DROP_BEFORE, **kw)


def test_stop_cuts_idle_connections_and_pending_delays(server, tmp_path):
    proxy = FaultProxy(server.host, server.port).start()
    c = make_client(proxy.url, tmp_path, read_timeout_s=5.0, retry=RetryPolicy(attempts=1))
    assert c.health()["status"] == "ok"  # leaves an idle keep-alive connection
    slow = proxy.add_rule(Fault(Action.DELAY, delay_s=30))
    fails: list[BaseException] = []
    t = threading.Thread(target=_call, args=(c.health, fails))
    t.start()
    deadline = time.monotonic() + 2
    while proxy.fired(slow) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proxy.fired(slow) == 1
    proxy.stop()
    t.join(3)
    assert not t.is_alive()
    assert fails and isinstance(fails[0], Unreachable)
    with pytest.raises(requests.ConnectionError):
        requests.get(proxy.url + "/v1/health", timeout=1)
    c.close()


def _call(fn, fails: list[BaseException]) -> None:
    try:
        fn()
    except BaseException as exc:  # handed to the test thread
        fails.append(exc)
