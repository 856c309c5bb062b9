"""Fixtures: a seeded store on a temp database with a manual clock, served on 127.0.0.1:0."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from storeserver import accounts, codes, demo, kiosks, member_sessions, members
from storeserver.clock import ManualClock
from storeserver.notify import RecordingNotifier
from storeserver.payments import SimulatedPaymentProvider
from storeserver.runner import ServerThread
from storeserver.store import Store

KIOSK = "kiosk-01"
OTHER_KIOSK = "kiosk-02"


class Client:
    """A requests session bound to the server URL and a bearer token."""

    def __init__(self, base_url: str, token: str | None, store: Store | None = None) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.store = store
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def resolve(self, member_id: str) -> requests.Response:
        """Scan a fresh code of ``member_id`` at this kiosk, as a member's phone shows it."""
        assert self.store is not None
        return self.post("/v1/members/resolve", {"code": member_code(self.store, member_id)})

    def member_session(self, member_id: str) -> dict[str, str]:
        """The headers a hold or spin for ``member_id`` needs: the session of a resolved code."""
        resp = self.resolve(member_id)
        assert resp.status_code == 200, resp.text
        return {member_sessions.HEADER: resp.json()["member_session"]["token"]}

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
    return Client(server.url, resp.json()["token"], server.store)


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


def member_code(store: Store, member_id: str, age_s: int = 0) -> str:
    """A signed member code of ``member_id`` issued ``age_s`` seconds ago by the store's key."""
    now = int(store.clock.now().timestamp()) - age_s
    return codes.issue(store.signing_key, codes.CodeKind.MEMBER, member_id, now)


def open_session(store: Store, kiosk_id: str, member_id: str) -> str:
    """In-process: what POST /v1/members/resolve does for a fresh code; the session token."""
    with store.db.transaction() as conn:
        code = members.resolve_code(
            store.ledger, conn, store.signing_key, kiosk_id, member_code(store, member_id)
        )
        session = member_sessions.open_session(
            conn, store.clock.now(), kiosk_id, code.subject, code.nonce,
            store.settings.member_session_s,
        )  # fmt: skip
    return session["token"]


def offline_event(
    store: Store,
    member_id: str,
    sku: str = "GIFT-TOTE",
    points: int = 300,
    compartment: int | None = 2,
    *,
    event_id: str | None = None,
    code: str | None = None,
    at: str | None = None,
) -> dict:
    """An ``offline_redemption`` as a kiosk uploads it: the member's code it verified offline,
    redeemed now (store clock)."""
    return {
        "event_id": event_id or new_txn(),
        "kind": "offline_redemption",
        "at": at or store.clock.now().isoformat(timespec="milliseconds"),
        "payload": {
            "txn_id": new_txn(),
            "member_id": member_id,
            "sku": sku,
            "points": points,
            "compartment": compartment,
            "member_code": code or member_code(store, member_id),
        },
    }


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
