"""Fixtures: a seeded store on a temp database with a manual clock, served on 127.0.0.1:0."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from storeserver import accounts, demo, kiosks
from storeserver.clock import ManualClock
from storeserver.notify import RecordingNotifier
from storeserver.payments import SimulatedPaymentProvider
from storeserver.runner import ServerThread
from storeserver.store import Store

KIOSK = "kiosk-01"
OTHER_KIOSK = "kiosk-02"


class Client:
    """A requests session bound to the server URL and a bearer token."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **kw) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=10, **kw)

    def post(self, path: str, json: object = None, **kw) -> requests.Response:
        return self.session.post(self.base_url + path, json=json, timeout=10, **kw)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def store(tmp_path, clock, notifier) -> Iterator[Store]:
    # points + cash tests pay through the simulated provider, which must be asked for
    s = Store(
        tmp_path / "store.db",
        clock=clock,
        notifier=notifier,
        provider=SimulatedPaymentProvider(),
    )
    demo.seed(s, [KIOSK, OTHER_KIOSK])
    yield s
    s.close()


@pytest.fixture
def server(store) -> Iterator[ServerThread]:
    with ServerThread(store) as srv:
        yield srv


def enroll(server: ServerThread, kiosk_id: str, *, replace: bool = False) -> Client:
    with server.store.db.transaction() as conn:
        code = kiosks.new_enrollment_code(conn, server.store.clock, kiosk_id, replace=replace)
    resp = requests.post(
        server.url + "/v1/kiosks/enroll",
        json={"enrollment_code": code, "kiosk_id": kiosk_id},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return Client(server.url, resp.json()["token"])


@pytest.fixture
def kiosk(server) -> Client:
    return enroll(server, KIOSK)


@pytest.fixture
def other_kiosk(server) -> Client:
    return enroll(server, OTHER_KIOSK)


def account(server: ServerThread, role: str, member: str | None = None) -> Client:
    """A client with a fresh account of that role (storeserver/accounts.py) and its token."""
    store = server.store
    with store.db.transaction() as conn:
        account_id = f"{role}-{uuid.uuid4().hex[:6]}"
        accounts.add_account(conn, store.clock, account_id, role, member)
        _, token = accounts.issue_token(conn, store.clock, account_id)
    return Client(server.url, token)


@pytest.fixture
def staff(server) -> Client:
    """A store manager's token: every till and back-office call of one store."""
    return account(server, "manager")


@pytest.fixture
def anon(server) -> Client:
    return Client(server.url, None)


def new_txn() -> str:
    return str(uuid.uuid4())


def db_snapshot(store: Store) -> dict[str, list[tuple]]:
    """Every row of every table, to prove a refused request changed nothing."""
    conn = store.db.connection()
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: sorted(map(tuple, conn.execute(f"SELECT * FROM {t}"))) for t in tables}


def refused(store, status: int, error: str, call, case: str = "") -> dict:
    """Make the call; it must be refused with status and error, a message, and no change at all."""
    where = f"[{case}] " if case else ""
    before = db_snapshot(store)
    resp = call()
    assert resp.status_code == status, f"{where}{resp.status_code} {resp.text}"
    body = resp.json()
    assert set(body) == {"error", "message"}, f"{where}{body}"
    assert body["error"] == error, f"{where}{body}"
    assert isinstance(body["message"], str) and body["message"].strip(), f"{where}{body}"
    assert db_snapshot(store) == before, f"{where}refused request changed the database: {body}"
    return body
