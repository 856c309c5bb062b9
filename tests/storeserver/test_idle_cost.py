"""Cheap idle kiosks: polls that changed nothing write nothing, heartbeats are written at most
once a minute unless the health changed materially (docs/storeserver.md, "Idle cost")."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from storeserver import kiosks
from storeserver.clock import iso

from .conftest import KIOSK, Client

WHEEL = "LUCKY"
POLLS = 15


@dataclass
class WriteCounter:
    """Counts what the store's connections write: write transactions begun (BEGIN
    IMMEDIATE, which takes SQLite's write lock even when nothing changes), rows changed
    (``total_changes``) and commits seen by another connection (``PRAGMA data_version``)."""

    path: str
    conns: list[sqlite3.Connection] = field(default_factory=list)
    write_begins: int = 0

    def __post_init__(self) -> None:
        self.observer = sqlite3.connect(self.path, isolation_level=None)

    def watch(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        if all(c is not conn for c in self.conns):
            self.conns.append(conn)
            conn.set_trace_callback(self._statement)
        return conn

    def _statement(self, sql: str) -> None:
        if sql.strip().upper().startswith("BEGIN IMMEDIATE"):
            self.write_begins += 1

    def snapshot(self) -> tuple[int, int, int]:
        changes = sum(c.total_changes for c in self.conns)
        version = self.observer.execute("PRAGMA data_version").fetchone()[0]
        return self.write_begins, changes, version


@pytest.fixture
def writes(store, monkeypatch) -> Iterator[WriteCounter]:
    counter = WriteCounter(store.db.path)
    connection = store.db.connection
    monkeypatch.setattr(store.db, "connection", lambda: counter.watch(connection()))
    yield counter
    counter.observer.close()


def _poll(kiosk: Client, health: dict) -> tuple[str, str, dict]:
    catalog = kiosk.get("/v1/catalog")
    wheel = kiosk.get(f"/v1/wheels/{WHEEL}")
    beat = kiosk.post("/v1/kiosks/heartbeat", {"health": health})
    for resp in (catalog, wheel, beat):
        assert resp.status_code == 200, resp.text
    return catalog.json()["version"], wheel.json()["commitments"], beat.json()


def _health(skew: float, outbox: int = 0, paper: str = "ok") -> dict:
    return {
        "printer": {"paper": paper},
        "versions": {"kiosk": "1.4.0"},
        "sync": {"outbox": outbox, "alerts": 0, "clock_skew_s": skew, "failures": 0},
    }


def test_unchanged_polls_write_nothing(kiosk, writes, clock):
    first = _poll(kiosk, _health(0.1))  # the first of the day: the wheel's seeds, a heartbeat
    before = writes.snapshot()
    for n in range(POLLS):
        clock.advance(seconds=3)  # well inside the heartbeat's minute
        version, commitments, beat = _poll(kiosk, _health(0.1 + n / 100, outbox=n % 3))
        assert (version, commitments) == first[:2]
        assert "revoked_staff" in beat and beat["public_keys"]  # the answer is served each time
    assert writes.snapshot() == before  # no write lock taken, no row changed, no commit


def test_heartbeat_written_once_a_minute(kiosk, store, clock):
    kiosk.post("/v1/kiosks/heartbeat", {"health": _health(0.1)})
    seen = _row(store)
    clock.advance(seconds=59)
    kiosk.post("/v1/kiosks/heartbeat", {"health": _health(0.9, outbox=4)})
    assert _row(store) == seen  # only the sync counters drifted: not written yet
    clock.advance(seconds=1)
    kiosk.post("/v1/kiosks/heartbeat", {"health": _health(0.9, outbox=4)})
    written = _row(store)
    assert written["last_seen"] == iso(clock.now())
    assert written["health"]["sync"]["outbox"] == 4


@pytest.mark.parametrize(
    "changed",
    [
        _health(0.1, paper="out"),
        {**_health(0.1), "doors": [{"number": 3, "open": True}]},
        {**_health(0.1), "versions": {"kiosk": "1.5.0"}},
    ],
    ids=["paper-out", "door-open", "new-version"],
)
def test_material_change_written_at_once(kiosk, store, clock, changed):
    kiosk.post("/v1/kiosks/heartbeat", {"health": _health(0.1)})
    clock.advance(seconds=5)
    kiosk.post("/v1/kiosks/heartbeat", {"health": changed})
    row = _row(store)
    assert row["health"] == changed
    assert row["last_seen"] == iso(clock.now())


def test_new_day_poll_commits_its_seed(kiosk, writes, clock):
    _, commitments, _ = _poll(kiosk, _health(0.1))
    before = writes.snapshot()
    clock.advance(days=1)
    resp = kiosk.get(f"/v1/wheels/{WHEEL}")
    after = writes.snapshot()
    days = sorted(resp.json()["commitments"])
    assert days[0] == sorted(commitments)[1]  # yesterday's "tomorrow" is today's seed
    assert days[1] not in commitments  # a new day committed: a real write, once
    assert after[0] == before[0] + 1 and after[2] != before[2]


def _row(store) -> dict:
    kiosk = next(k for k in kiosks.list_kiosks(store.db.connection()) if k["id"] == KIOSK)
    return {"last_seen": kiosk["last_seen"], "health": kiosk["health"]}


def test_an_idle_kiosk_costs_at_most_one_write_a_minute(kiosk, writes, clock):
    """Ten minutes of the kiosk's default cadence (catalog, wheel and heartbeat every 30 s),
    the clock skew drifting each time: one heartbeat write a minute, nothing else."""
    _poll(kiosk, _health(0.0))  # the day's seeds and the first heartbeat
    before = writes.snapshot()
    for n in range(20):
        clock.advance(seconds=30)
        _poll(kiosk, _health(n / 50))
    begins, changes, _ = (a - b for a, b in zip(writes.snapshot(), before, strict=True))
    assert begins == changes == 10  # one UPDATE of the kiosk's row a minute
