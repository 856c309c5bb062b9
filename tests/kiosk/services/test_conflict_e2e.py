"""Offline and back, end to end: the real sync worker notices the store server is gone (a
partition in the loopback fault proxy), the engine goes into offline mode on the worker's
word, a gift dispensed offline waits in the outbox, and once the network heals the worker
uploads it: the server charges it, or — when the member's points were spent elsewhere
meanwhile — refuses it as a conflict, which the kiosk keeps in its sync alerts for staff.

The worker runs on its own thread with a short heartbeat and backoffs, as in the app (kiosk/wiring.py wires
``on_online_change`` to the engine's connectivity and retries recovery after each cycle).
Every wait is on a worker cycle or a door sensor, with a timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from kiosk.domain.transaction import TxnState
from kiosk.domain.wheel import Wheel
from kiosk.ports import DoorState
from kiosk.services.txn_steps import Outcome, TransactionRefused
from kiosk.sync.records import SyncSettings, SyncStatus
from kiosk.sync.worker import SyncWorker
from kiosk.wiring import SyncConnectivity
from tests.support.cycles import Cycles
from tests.support.fault_proxy import FaultProxy

from .rig import COUPON, TOTE, KioskSide, ServerSide

WHEEL = Wheel("LUCKY", "幸运转盘", "Lucky wheel", 100, 3, ())  # as synced before the outage


class Kiosk:
    """The engine, its connectivity fed by a running sync worker, behind a fault proxy."""

    def __init__(self, tmp_path, server: ServerSide, proxy: FaultProxy) -> None:
        self.connectivity = SyncConnectivity()
        self.side = KioskSide(
            tmp_path, proxy.url, server.enrollment_code(), link=self.connectivity,
            codes=server.code,
        )  # fmt: skip
        self.cycles = Cycles()
        self.worker = SyncWorker(
            self.side.client,
            self.side.outbox,
            # a heartbeat every 0.25 s finds an outage at once (the app's is 30 s)
            settings=SyncSettings(heartbeat_s=0.25, backoff_base_s=0.05, backoff_cap_s=0.2),
            on_online_change=self.connectivity.changed,
            on_cycle=self._after_cycle,
        )

    def _after_cycle(self, status: SyncStatus) -> None:
        if status.online:  # as KioskCore.housekeeping: retry voids and captures
            self.side.engine.settle()
        self.cycles(status)

    def cycle(self, pred: Callable[[SyncStatus], bool]) -> SyncStatus:
        """Run a cycle now and wait for one (that one or a later) to match ``pred``."""
        since = self.cycles.mark()
        self.worker.wake(force=True)
        return self.cycles.wait_for(pred, since)


@pytest.fixture
def proxy(server) -> Iterator[FaultProxy]:
    with FaultProxy(server.thread.host, server.thread.port) as p:
        yield p


@pytest.fixture
def kiosk(tmp_path, server, proxy) -> Iterator[Kiosk]:
    k = Kiosk(tmp_path / "kiosk", server, proxy)
    k.worker.start()
    k.cycles.wait_for(lambda s: s.online, since=0)
    yield k
    assert k.worker.stop(5)
    k.side.close()


def go_offline(kiosk: Kiosk, proxy: FaultProxy) -> SyncStatus:
    """Pull the cable and let the worker find out; the engine hears it from the worker."""
    assert kiosk.connectivity.online()
    proxy.partition()
    status = kiosk.cycle(lambda s: not s.online)
    assert not kiosk.connectivity.online() and kiosk.connectivity.offline_since() is not None
    assert status.consecutive_failures >= 1 and status.last_error
    return status


def dispense_offline(kiosk: Kiosk, member_id: str, balance: int):
    who = kiosk.side.member(member_id, balance, online=False)  # scanned during the outage
    result = kiosk.side.engine.redeem(who, TOTE)
    assert result.outcome is Outcome.DISPENSED_UNCONFIRMED and result.printed
    assert result.txn.offline and result.txn.state is TxnState.DONE
    assert kiosk.side.pulses(2) == 1
    (event,) = kiosk.side.outbox.pending(10)
    assert (event.kind, event.event_id) == ("offline_redemption", result.txn.txn_id)
    shut(kiosk, 2)
    return result


def shut(kiosk: Kiosk, number: int) -> None:
    """The member shuts the door; the locker counts it shut once debounced (about 70 ms), and
    until then refuses to pulse it ("door_already_open"), as it should."""
    kiosk.side.sim.close_door(number)
    deadline = time.monotonic() + 5
    while kiosk.side.locker.door_state(number) is not DoorState.CLOSED:
        assert time.monotonic() < deadline, f"compartment {number} never read shut"
        time.sleep(0.01)


def uploads(proxy: FaultProxy) -> list:
    return [s for s in proxy.seen if s.path == "/v1/kiosks/events" and s.upstream_status]


def test_an_outage_found_by_the_worker_turns_offline_mode_on_and_the_gift_is_charged_later(
    server, proxy, kiosk
):
    go_offline(kiosk, proxy)
    # offline mode, on the worker's word: no spins, no coupons; a small gift within limits
    with pytest.raises(TransactionRefused) as no_spin:
        kiosk.side.engine.spin(kiosk.side.member("M0001", online=False), WHEEL)
    assert no_spin.value.code == "offline"
    with pytest.raises(TransactionRefused) as no_coupon:
        kiosk.side.engine.redeem(kiosk.side.member("M0001", online=False), COUPON)
    assert no_coupon.value.code == "offline_coupon"
    result = dispense_offline(kiosk, "M0001", 750)
    # still partitioned: the worker tries, fails, and keeps the event
    status = kiosk.cycle(lambda s: s.consecutive_failures >= 2)
    assert not status.online and status.outbox_length == 1
    assert server.balance("M0001") == 750 and result.txn.txn_id not in server.redemptions()
    assert uploads(proxy) == []

    proxy.heal()
    status = kiosk.cycle(lambda s: s.online and s.outbox_length == 0)
    assert status.alerts == 0 and kiosk.side.outbox.alerts() == []
    assert kiosk.connectivity.online() and kiosk.connectivity.offline_since() is None
    assert server.redemptions()[result.txn.txn_id] == "captured"
    assert server.balance("M0001") == 750 - 300 and server.stock(2) == 5 - 1
    assert len(uploads(proxy)) == 1  # charged once
    # online again: the engine talks to the server itself (the worker stopped first, as its
    # recovery pass would make a tap at that moment "busy")
    assert kiosk.worker.stop(5)
    again = kiosk.side.engine.redeem(kiosk.side.member("M0001"), TOTE)  # scanned again
    assert again.outcome is Outcome.DISPENSED, again.txn.void_reason
    assert server.balance("M0001") == 750 - 600


def test_an_offline_gift_spent_elsewhere_meanwhile_is_a_conflict_for_staff(server, proxy, kiosk):
    go_offline(kiosk, proxy)
    result = dispense_offline(kiosk, "M0001", 750)  # the kiosk last saw 750 points
    with server.store.db.transaction() as conn:  # spent at the till while the kiosk was cut off
        server.store.ledger.allocate(conn, "M0001", 700, "till-elsewhere", "redeem")
    assert server.balance("M0001") == 50

    proxy.heal()
    status = kiosk.cycle(lambda s: s.online and s.outbox_length == 0)
    assert status.alerts == 1
    (alert,) = kiosk.side.outbox.alerts()
    assert (alert.status, alert.reason) == ("conflict", "insufficient_points")
    assert alert.alert_id == result.txn.txn_id
    assert alert.event.payload["member_id"] == "M0001" and alert.event.payload["points"] == 300
    assert "50" in (alert.message or "")
    # the server charged nothing and told its own staff too
    assert server.balance("M0001") == 50 and result.txn.txn_id not in server.redemptions()
    rows = server.store.db.connection().execute("SELECT kind, detail FROM alerts").fetchall()
    conflicts = [r["detail"] for r in rows if r["kind"] == "offline_conflict"]
    assert len(conflicts) == 1 and result.txn.txn_id in conflicts[0]
    # it stays for staff across later cycles and is never sent again
    kiosk.cycle(lambda s: s.online)
    assert len(kiosk.side.outbox.alerts()) == 1 and len(uploads(proxy)) == 1
    assert kiosk.side.outbox.acknowledge(alert.alert_id)
    assert kiosk.cycle(lambda s: s.online).alerts == 0
