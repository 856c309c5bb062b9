"""SIGKILL campaign over the transaction engine (used by tests and ``bench/txn_crash.py``).

For each kill point a child kiosk process (``txn_crash_child``) runs one flow against the
real store server and dies by SIGKILL; the parent restarts the kiosk on the same state
folder, lets recovery run, and checks the invariants against the server's ledger, the
journal and the pulse log:

- the journal opens (no safe mode) and every transaction in it is finished;
- no hold is left open on the server;
- no door pulsed twice for a transaction, and recovery never pulsed at all;
- a gift is charged only if its door was confirmed open (DISPENSED journalled), and every
  charge matches the member's balance change: no points lost, none taken twice;
- offline: the upload event exists exactly when the gift was dispensed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.domain.transaction import TxnState
from kiosk.services.recovery import forget_finished

from .rig import KIOSK, KioskSide, ServerSide

FLOWS = ("redeem", "coupon", "cash", "spin", "offline", "jam")
MEMBER = "M0004"
ROOT = Path(__file__).parents[3]


@dataclass
class KillPoint:
    flow: str
    mode: str  # "before" / "after" journal write number ``at``, or "random" after ``delay_s``
    at: int = 0
    delay_s: float = 0.0

    def __str__(self) -> str:
        where = f"{self.delay_s * 1000:.0f} ms" if self.mode == "random" else f"write {self.at}"
        return f"{self.flow}: kill {self.mode} {where}"


@dataclass
class CampaignResult:
    runs: int = 0
    killed: int = 0
    violations: list[str] = field(default_factory=list)
    writes_per_flow: dict[str, int] = field(default_factory=dict)


class Campaign:
    """One store server and one kiosk state folder, reused from kill to kill."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.server = ServerSide(folder / "server")
        with self.server.store.db.transaction() as conn:  # spins without a daily limit here
            conn.execute("UPDATE wheels SET daily_limit = 1000000")
        kiosk = KioskSide(folder / "kiosk", self.server.url, self.server.enrollment_code())
        kiosk.close()

    def close(self) -> None:
        self.server.stop()

    # ---- one run -------------------------------------------------------------------------
    def _prepare(self) -> None:
        store = self.server.store
        with store.db.transaction() as conn:
            if self.server.balance(MEMBER) < 5000:
                store.ledger.earn(conn, MEMBER, 20000, "top_up", f"crash-top-up-{time.time_ns()}")
            for number, sku in ((1, "GIFT-MUG"), (2, "GIFT-TOTE"), (4, "GIFT-EARBUDS")):
                conn.execute(
                    "UPDATE compartments SET stock = 50, sku = ? WHERE kiosk_id = ? AND number = ?",
                    (sku, KIOSK, number),
                )
            conn.execute("UPDATE items SET stock = 1000 WHERE stock IS NOT NULL")
            conn.execute("UPDATE wheel_segments SET stock = NULL")

    def run(self, point: KillPoint, timeout_s: float = 30.0) -> tuple[bool, list[str], int]:
        """Run one kill point; (was killed, violations, journal writes seen)."""
        self._prepare()
        kfolder = self.folder / "kiosk"
        (kfolder / "pulses.log").unlink(missing_ok=True)
        before_txns = set(self.server.redemptions())
        before_balance = self.server.balance(MEMBER)
        args = {
            "folder": str(kfolder), "server_url": self.server.url, "flow": point.flow,
            "member": MEMBER, "kill_mode": point.mode, "kill_at": point.at,
        }  # fmt: skip
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.kiosk.services.txn_crash_child", json.dumps(args)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        assert child.stdout is not None
        first = child.stdout.readline()
        if point.mode == "random" and first.startswith("READY"):
            time.sleep(point.delay_s)
            child.send_signal(signal.SIGKILL)
        try:
            out, err = child.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            child.kill()
            out, err = child.communicate()
            return False, [f"{point}: child hung; stderr: {err[-500:]}"], 0
        killed = child.returncode == -signal.SIGKILL
        writes = 0
        for line in (first + out).splitlines():
            if line.startswith("DONE"):
                writes = int(line.rsplit("writes=", 1)[1])
        if child.returncode not in (0, -signal.SIGKILL):
            return killed, [f"{point}: child failed ({child.returncode}): {err[-800:]}"], writes
        return killed, self._check(point, before_txns, before_balance), writes

    # ---- the invariants ------------------------------------------------------------------
    def _check(self, point: KillPoint, before_txns: set[str], before_balance: int) -> list[str]:
        bad: list[str] = []
        kfolder = self.folder / "kiosk"
        pulses_in_flow = _pulses(kfolder)
        kiosk = KioskSide(kfolder, self.server.url)
        try:
            if kiosk.journal.safe_mode:
                return [f"{point}: journal unreadable, safe mode: {kiosk.journal.safe_mode_reason}"]
            recovery_pulses: list[int] = []
            real_open = kiosk.locker.open
            kiosk.locker.open = lambda n: (recovery_pulses.append(n), real_open(n))[1]  # type: ignore[method-assign]
            for _ in range(2):
                kiosk.engine.settle()
            if recovery_pulses:
                bad.append(f"{point}: recovery pulsed compartments {recovery_pulses}")
            if len(pulses_in_flow) > 1:
                bad.append(f"{point}: pulsed {len(pulses_in_flow)} times in one transaction")
            txns = {}
            for txn_id in kiosk.journal.all("txn"):
                txn, ctx = kiosk.engine.load(txn_id)
                txns[txn_id] = (txn, ctx)
                if ctx.capture_refused:  # holds cannot expire on the manual clock: a bug
                    bad.append(f"{point}: txn {txn_id} capture refused: {ctx.capture_refused}")
                elif txn.state not in (TxnState.DONE, TxnState.VOIDED):
                    bad.append(f"{point}: txn {txn_id} left unfinished at {txn.state.name}")
            new = {k: v for k, v in self.server.redemptions().items() if k not in before_txns}
            delta = self.server.balance(MEMBER) - before_balance
            bad += self._ledger(point, new, txns, delta, kiosk)
            forget_finished(kiosk.engine, older_than_s=-1, now=time.time())
            for event in kiosk.outbox.pending(1000):
                kiosk.outbox.settle([_applied(event.event_id)])
            for key in list(kiosk.journal.all("receipt_queue")):
                kiosk.journal.delete("receipt_queue", key)
            for key in list(kiosk.journal.all("offline_spends")):  # a fresh floor each run
                kiosk.journal.delete("offline_spends", key)
            for key in list(kiosk.journal.all("compartment_flags")):
                kiosk.journal.delete("compartment_flags", key)
        finally:
            kiosk.close()
        return bad

    def _ledger(self, point, new, txns, delta, kiosk) -> list[str]:
        bad: list[str] = []
        if len(new) > 1:
            bad.append(f"{point}: {len(new)} server redemptions for one transaction")
        charged = 0
        for txn_id, state in new.items():
            if state == "held":
                bad.append(f"{point}: hold {txn_id} left open on the server")
            if state != "captured":
                continue
            if txn_id not in txns:
                bad.append(f"{point}: server captured {txn_id} the journal does not know")
                continue
            txn, ctx = txns[txn_id]
            dispensed = any(s is TxnState.DISPENSED for s, _ in txn.history)
            if txn.compartment is not None and not dispensed:
                bad.append(f"{point}: {txn_id} charged without a confirmed door")
            prize = ctx.prize.points if ctx.prize and ctx.prize.kind.value == "points" else 0
            charged += txn.points - prize
        for txn_id, (txn, _ctx) in txns.items():
            dispensed = any(s is TxnState.DISPENSED for s, _ in txn.history)
            gone = dispensed and not txn.offline
            if gone and new.get(txn_id) != "captured":
                bad.append(f"{point}: {txn_id} dispensed but the server has it {new.get(txn_id)}")
        if point.flow == "offline":
            uploads = [e for e in kiosk.outbox.pending(1000) if e.kind == "offline_redemption"]
            dispensed = [
                t for t, _ in txns.values() if any(s is TxnState.DISPENSED for s, _ in t.history)
            ]
            if len(uploads) != len(dispensed):
                bad.append(f"{point}: {len(uploads)} uploads for {len(dispensed)} dispensed gifts")
        if delta != -charged:
            bad.append(f"{point}: balance moved {delta}, charges say {-charged}")
        return bad


def _applied(event_id: str):
    from kiosk.ports import EventResult

    return EventResult(event_id, "applied")


def _pulses(folder: Path) -> list[int]:
    try:
        return [int(x) for x in (folder / "pulses.log").read_text().split()]
    except FileNotFoundError:
        return []


def run_campaign(
    folder: Path,
    flows: tuple[str, ...] = FLOWS,
    random_kills: int = 0,
    rng: random.Random | None = None,
    every_write: bool = True,
    max_delay_s: float = 0.6,
    progress=None,
) -> CampaignResult:
    """Kill every flow before and after each of its journal writes, then at random moments."""
    rng = rng or random.Random(1)
    result = CampaignResult()
    campaign = Campaign(folder)
    try:
        points: list[KillPoint] = []
        for flow in flows:
            _, bad, writes = campaign.run(KillPoint(flow, "none"))
            result.runs += 1
            result.violations += bad
            result.writes_per_flow[flow] = writes
            if every_write:
                for at in range(1, writes + 1):
                    points += [KillPoint(flow, "before", at), KillPoint(flow, "after", at)]
        for _ in range(random_kills):
            points.append(
                KillPoint(rng.choice(flows), "random", delay_s=rng.uniform(0, max_delay_s))
            )
        for point in points:
            killed, bad, _ = campaign.run(point)
            result.runs += 1
            result.killed += killed
            result.violations += bad
            if progress:
                progress(result)
    finally:
        campaign.close()
    return result
