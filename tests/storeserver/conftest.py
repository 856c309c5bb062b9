"""Fixtures: a seeded store on a temp database with a manual clock, served on 127.0.0.1:0."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from storeserver import demo, kiosks
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


@pytest.fixture
def staff(server) -> Client:
    with server.store.db.transaction() as conn:
        token = kiosks.new_staff_token(conn, server.store.clock, "till-1")
    return Client(server.url, token)


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
