"""Faults between the kiosk and the store server (the loopback fault proxy) at each server
call of each flow: whatever the network does, once it heals and recovery has run, the
ledger, the locker and the journal agree — no hold left open, no double dispense, no points
lost or taken twice, nothing charged without a confirmed door."""

from __future__ import annotations

import pytest

from kiosk.domain.transaction import TxnState
from kiosk.errors import KioskError
from tests.support.fault_proxy import Action, Fault, FaultProxy, Garbage

from .rig import EARBUDS, MUG, KioskSide, ServerSide, member, pay_when_shown

MEMBER = "M0004"

STEPS = {
    "hold": ("POST", r"/v1/(redemptions|wheel/spins)"),
    "poll": ("GET", r"/v1/redemptions/[^/]+"),
    "capture": ("POST", r"/v1/redemptions/[^/]+/capture"),
    "void": ("POST", r"/v1/redemptions/[^/]+/void"),
}
FAULTS = {
    "drop_before": dict(action=Action.DROP_BEFORE),
    "drop_after": dict(action=Action.DROP_AFTER),
    "503_after": dict(action=Action.STATUS, status=503, after_server=True),
    "garbage_after": dict(action=Action.GARBAGE, garbage=Garbage.NOT_JSON, after_server=True),
    "truncated_after": dict(action=Action.GARBAGE, garbage=Garbage.TRUNCATED, after_server=True),
    "slow_after": dict(action=Action.DELAY, delay_s=0.6, after_server=True),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = ServerSide(tmp_path_factory.mktemp("server"))
    with s.store.db.transaction() as conn:
        conn.execute("UPDATE wheels SET daily_limit = 1000000")
        conn.execute("UPDATE compartments SET stock = 1000")
        conn.execute("UPDATE wheel_segments SET stock = NULL")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def proxy(server):
    with FaultProxy(server.thread.host, server.thread.port) as p:
        yield p


def run_flow(kiosk: KioskSide, server: ServerSide, flow: str):
    who = member(MEMBER, 10**6)
    if flow == "jam":
        kiosk.sim.jam(1)
    if flow == "cash":
        return kiosk.engine.redeem(who, EARBUDS, pay_when_shown(server, kiosk).progress)
    if flow == "spin":
        return kiosk.engine.spin(who, "LUCKY", 100)
    return kiosk.engine.redeem(who, MUG)


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("step", sorted(STEPS))
@pytest.mark.parametrize("flow", ["redeem", "jam", "cash", "spin"])
def test_invariants_hold_under_a_persistent_fault(tmp_path, server, proxy, flow, step, fault):
    with server.store.db.transaction() as conn:
        server.store.ledger.earn(conn, MEMBER, 5000, "top_up", f"faults-{tmp_path.name}")
    before_balance = server.balance(MEMBER)
    before_txns = set(server.redemptions())
    kiosk = KioskSide(
        tmp_path, proxy.url, server.enrollment_code(), payment_timeout_s=1.5, read_timeout_s=0.4
    )
    method, path = STEPS[step]
    proxy.add_rule(Fault(method=method, path=path, **FAULTS[fault]))
    try:
        escaped = None
        try:
            run_flow(kiosk, server, flow)
        except KioskError as exc:  # the flow must end in a result the UI can show
            escaped = exc
        proxy.clear()
        for n in range(1, 7):
            if kiosk.sim.is_open(n):
                kiosk.sim.close_door(n)
        kiosk.engine.settle()
        kiosk.engine.settle()
        problems = check(kiosk, server, before_txns, before_balance)
    finally:
        proxy.clear()
        kiosk.close()
    assert problems == []
    assert escaped is None, repr(escaped)


def check(kiosk: KioskSide, server: ServerSide, before_txns, before_balance) -> list[str]:
    bad = []
    txns = {}
    for txn_id in kiosk.journal.all("txn"):
        txn, ctx = kiosk.engine.load(txn_id)
        txns[txn_id] = (txn, ctx)
        if txn.state not in (TxnState.DONE, TxnState.VOIDED):
            bad.append(f"{txn_id} left at {txn.state.name}")
    pulses = sum(kiosk.pulses(n) for n in range(1, 7))
    if pulses > 1:
        bad.append(f"{pulses} pulses for one transaction")
    new = {k: v for k, v in server.redemptions().items() if k not in before_txns}
    charged = 0
    for txn_id, state in new.items():
        if state == "held":
            bad.append(f"hold {txn_id} left open")
        if state != "captured":
            continue
        txn, ctx = txns[txn_id]
        dispensed = any(s is TxnState.DISPENSED for s, _ in txn.history)
        if txn.compartment is not None and not dispensed:
            bad.append(f"{txn_id} charged without a confirmed door")
        prize = ctx.prize.points if ctx.prize and ctx.prize.kind.value == "points" else 0
        charged += txn.points - prize
    for txn_id, (txn, ctx) in txns.items():
        dispensed = any(s is TxnState.DISPENSED for s, _ in txn.history)
        if ctx.capture_refused:  # never expected here: holds cannot expire on a manual clock
            bad.append(f"{txn_id}: capture refused: {ctx.capture_refused}")
        elif dispensed and new.get(txn_id) != "captured":
            bad.append(f"{txn_id}: gift dispensed but the server has it {new.get(txn_id)}")
    delta = server.balance(MEMBER) - before_balance
    if delta != -charged:
        bad.append(f"balance moved {delta}, charges say {-charged}")
    return bad
