"""SIGKILL campaign over the transaction engine (used by tests and ``bench/txn_crash.py``).

For each kill point a child kiosk process (``txn_crash_child``, forked by a zygote that has
the kiosk imported) runs one flow against the real store server and dies by SIGKILL; the
parent restarts the kiosk on the same state folder, lets recovery run, drains the outbox to
the real server as the sync worker would, and checks the invariants against the server's
ledger, the journal and the locker's pulse log:

- the journal opens (no safe mode) and every transaction in it is finished;
- no hold is left open on the server, and no payment is left pending or paid on a void;
- a spin is voided only for a gift whose door was not confirmed (a drawn spin is final);
- no door pulsed twice for a transaction, and recovery never pulsed at all (nor a recovery
  run that was itself killed);
- a gift is charged only if its door was confirmed open (DISPENSED journalled), a dispensed
  gift is charged (online or, once uploaded, offline), every charge matches the member's
  balance change (no points lost, none taken twice) and the server's compartment stock
  dropped by the gifts it charged;
- a coupon exists exactly when its transaction was captured, and the receipt names it;
- the outbox is delivered to the server (nothing refused), and an offline spend reaches the
  server's ledger exactly once;
- compartment 2 (the totes, which run out: only restock counts put them back) holds on the
  server what the cabinet model says, no tote left it while the model counted it empty, and
  every count the flow journalled reached the server (txn_crash_cabinet.py,
  txn_crash_restock.py for the restock flows and their sync worker).

Kill points: before and after every journal write of every flow, at random moments drawn
within the flow's measured duration, and during recovery (the flow killed in a chosen state,
then the recovery killed before or after each of its own journal writes).
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.domain.transaction import TxnState
from kiosk.services.recovery import forget_finished
from kiosk.services.restock import COUNT_TABLE, SESSION_TABLE
from kiosk.sync.worker import SyncWorker
from storeserver.payments import DEFAULT_PAYMENT_EXPIRY_S

from .rig import COUPON, KIOSK, KioskSide, ServerSide
from .txn_crash_cabinet import Cabinet
from .txn_crash_restock import RESTOCK_FLOWS, TOTES

FLOWS = (
    "redeem", "coupon", "cash", "cash_cancel", "cash_timeout", "cash_expired",
    "spin_points", "spin_coupon", "spin_gift", "offline", "jam", *RESTOCK_FLOWS,
)  # fmt: skip
# The demo wheel's segment each spin flow is made certain to land on (the others' stock is 0,
# so they leave the draw): 1 = 50 points, 3 = a ¥10 coupon, 5 = the mug in compartment 1.
SPIN_SEGMENT = {"spin_points": 1, "spin_coupon": 3, "spin_gift": 5}
# States a flow is killed in before its recovery is killed too: (flow, kill mode, the write)
RECOVERY_CRASHES = (
    ("redeem", "after", "put txn DOOR_OPENING"),  # void, needs-check flag, voucher, upload
    ("redeem", "after", "put txn DISPENSED"),  # capture, receipt queued, PRINTED, DONE
    ("cash", "after", "put txn PAID"),  # void with a cash refund
    ("cash_cancel", "after", "put txn VOIDING"),  # the void again, idempotent
    ("coupon", "before", "put txn CAPTURED"),  # the server captured: the coupon is queued
    ("jam", "after", "put txn NEEDS_CHECK"),  # flag and tell staff, then void
    ("offline", "after", "put txn DISPENSED"),  # offline capture, then the upload
    ("spin_gift", "after", "put txn DISPENSED"),
    ("restock_redeem", "after", "put restock_counts"),  # the count's event still to queue
)
MEMBER = "M0004"
COMPARTMENT_STOCK = 50
ROOT = Path(__file__).parents[3]
CHILD = "tests.kiosk.services.txn_crash_child"


@dataclass(frozen=True)
class KillPoint:
    flow: str
    mode: str  # "none"; "before" / "after" journal write ``at``; "random" after ``delay_s``
    at: int = 0
    delay_s: float = 0.0
    recovery_mode: str = ""  # kill the recovery run too: "before" / "after" its write
    recovery_at: int = 0

    @property
    def kind(self) -> str:
        if self.recovery_mode:
            return "recovery"
        return "random" if self.mode == "random" else "every write"

    def __str__(self) -> str:
        where = f"{self.delay_s * 1000:.0f} ms" if self.mode == "random" else f"write {self.at}"
        text = f"{self.flow}: kill {self.mode} {where}"
        if self.recovery_mode:
            text += f", then recovery killed {self.recovery_mode} its write {self.recovery_at}"
        return text


@dataclass
class ChildRun:
    """One child process as the parent saw it."""

    rc: int
    lines: list[str]
    ready_at: float | None
    done_at: float | None
    hung: bool
    stderr: str

    @property
    def killed(self) -> bool:
        return self.rc == -signal.SIGKILL

    @property
    def finished(self) -> bool:  # the flow had returned before the child died
        return any(line.startswith("DONE") for line in self.lines)

    @property
    def writes(self) -> list[str]:
        return [line.split(" ", 2)[2] for line in self.lines if line.startswith("W ")]

    @property
    def duration_s(self) -> float | None:
        if self.ready_at is None or self.done_at is None:
            return None
        return self.done_at - self.ready_at


@dataclass
class RunOutcome:
    child: ChildRun
    violations: list[str]
    recovery: ChildRun | None = None


KINDS = ("every write", "recovery", "random")


@dataclass
class CampaignResult:
    runs: int = 0  # child runs, the uninterrupted reference runs and recovery runs included
    kill_points: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    killed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    violated: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    violations: list[str] = field(default_factory=list)  # every message, reference runs too
    writes_per_flow: dict[str, list[str]] = field(default_factory=dict)
    duration_per_flow: dict[str, float] = field(default_factory=dict)
    violated_reference: int = 0  # uninterrupted runs after which an invariant failed
    random_mid_flow: int = 0  # random kills that landed before the flow had returned
    random_after_done: int = 0
    recovery_killed: int = 0  # recovery runs that really died at their kill point
    missed: list[str] = field(default_factory=list)  # write kill points that never fired
    cabinet_counts: int = 0  # restock counts the cabinet model followed (txn_crash_cabinet.py)
    cabinet_gifts: int = 0  # totes it saw leave compartment 2
    cabinet_refills: int = 0  # times the campaign refilled it for a flow that takes first
    shelf_empty: int = 0  # times a member found no tote offered: the stock ran out

    @property
    def total_points(self) -> int:
        return sum(self.kill_points.values())

    @property
    def total_violated(self) -> int:
        """Kill points after which at least one invariant failed (not messages)."""
        return sum(self.violated.values())

    def add(self, point: KillPoint, outcome: RunOutcome) -> None:
        self.runs += 1 + (outcome.recovery is not None)
        done = [line for line in outcome.child.lines if line.startswith("DONE")]
        self.shelf_empty += sum("empty" in line.split()[1].split(",") for line in done)
        self.violations += outcome.violations
        if point.mode == "none":
            self.violated_reference += bool(outcome.violations)
            return
        kind = point.kind
        self.kill_points[kind] += 1
        self.killed[kind] += outcome.child.killed
        self.violated[kind] += bool(outcome.violations)
        if point.mode == "random":
            if outcome.child.finished:
                self.random_after_done += 1
            else:
                self.random_mid_flow += 1
        elif not outcome.child.killed:
            self.missed.append(str(point))
        if outcome.recovery is not None and outcome.recovery.killed:
            self.recovery_killed += 1


class Zygote:
    """The child-side process that forks one kiosk per run (see ``txn_crash_child``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._err = open(folder / "zygote.err", "w")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", CHILD, "--zygote"], cwd=ROOT, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._err, text=True, bufsize=1,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True, name="zygote-reader").start()
        if self._lines.get(timeout=120) != "ZYGOTE":
            raise RuntimeError(f"crash zygote did not start: {self._stderr()}")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _stderr(self) -> str:
        self._err.flush()
        return (self.folder / "zygote.err").read_text()[-800:]

    def _get(self, timeout_s: float) -> str:
        line = self._lines.get(timeout=max(timeout_s, 0.0))
        if line is None:
            raise RuntimeError(f"crash zygote died: {self._stderr()}")
        return line

    def run(self, args: dict, kill_after_s: float | None = None, timeout_s: float = 30.0):
        """Fork a child for ``args``; SIGKILL it ``kill_after_s`` after READY if given."""
        err = Path(args["folder"]) / "child.err"
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({**args, "stderr": str(err)}) + "\n")
        self.proc.stdin.flush()
        first = self._get(60)
        assert first.startswith("PID "), first
        pid = int(first.split()[1])
        lines: list[str] = []
        ready_at = done_at = kill_at = None
        hung = False
        deadline = time.monotonic() + timeout_s
        while True:
            now = time.monotonic()
            until = deadline if kill_at is None else min(deadline, kill_at)
            try:
                line = self._get(until - now)
            except queue.Empty:
                if kill_at is not None and time.monotonic() >= kill_at:
                    kill_at = None
                else:  # the child hangs: end it, and say so
                    hung, deadline = True, time.monotonic() + 30
                os.kill(pid, signal.SIGKILL)  # still ours: the zygote has not reaped it
                continue
            now = time.monotonic()
            if line.startswith(f"EXIT {pid} "):
                rc = int(line.rsplit(" ", 1)[1])
                break
            lines.append(line)
            if line == "READY":
                ready_at = now
                if kill_after_s is not None:
                    kill_at = now + kill_after_s
            elif line.startswith("DONE"):
                done_at = now
        stderr = err.read_text(errors="replace") if err.exists() else ""
        return ChildRun(rc, lines, ready_at, done_at, hung, stderr)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._err.close()


@dataclass(frozen=True)
class _Before:
    txns: frozenset[str]
    balance: int
    events: frozenset[str]


class Campaign:
    """One store server, one zygote and one kiosk state folder, reused from kill to kill."""

    def __init__(self, folder: Path, inject: str = "") -> None:
        self.folder = folder
        self.inject = inject  # a bug for the child to plant (txn_crash_child._inject)
        # One kiosk token runs every flow's child kiosk back to back, each resolving a member's
        # code and recovering: hundreds of resolves and holds a minute, which the store's
        # per-token rate limit (there to stop a stolen token) would refuse; the campaign is
        # about exactly-once, the limit is tested in tests/storeserver/test_ratelimit.py.
        self.server = ServerSide(folder / "server", rate_limits={})
        with self.server.store.db.transaction() as conn:  # spins without a daily limit here
            conn.execute("UPDATE wheels SET daily_limit = 1000000")
        kiosk = KioskSide(folder / "kiosk", self.server.url, self.server.enrollment_code())
        kiosk.close()
        self.writes: dict[str, list[str]] = {}  # each flow's journal writes (run_campaign's)
        self.cabinet = Cabinet()  # the totes run out: only counts (and refills) put them back
        self._set_totes(self.cabinet.totes)
        self.zygote = Zygote(folder)

    def close(self) -> None:
        self.zygote.close()
        self.server.stop()

    # ---- one run -------------------------------------------------------------------------
    def _set_totes(self, stock: int) -> None:
        with self.server.store.db.transaction() as conn:
            conn.execute(
                "UPDATE compartments SET stock = ?, sku = 'GIFT-TOTE' "
                "WHERE kiosk_id = ? AND number = ?",
                (stock, KIOSK, TOTES),
            )

    def _prepare(self, flow: str) -> None:
        store = self.server.store
        self.cabinet.prepare(flow, self._set_totes)
        with store.db.transaction() as conn:
            if self.server.balance(MEMBER) < 5000:
                store.ledger.earn(conn, MEMBER, 20000, "top_up", f"crash-top-up-{time.time_ns()}")
            for number, sku in ((1, "GIFT-MUG"), (4, "GIFT-EARBUDS")):  # fresh each run
                conn.execute(
                    "UPDATE compartments SET stock = ?, sku = ? WHERE kiosk_id = ? AND number = ?",
                    (COMPARTMENT_STOCK, sku, KIOSK, number),
                )
            conn.execute("UPDATE items SET stock = 1000 WHERE stock IS NOT NULL")
            # a fresh offline floor on the server too, as _clean gives the kiosk one
            conn.execute("DELETE FROM offline_spends")
            conn.execute("UPDATE wheel_segments SET stock = NULL")
            if flow in SPIN_SEGMENT:  # an out-of-stock segment leaves the draw (wheel.py)
                conn.execute(
                    "UPDATE wheel_segments SET stock = 0 WHERE wheel_id = 'LUCKY' AND idx != ?",
                    (SPIN_SEGMENT[flow],),
                )
        # the payment is due at once: the server's next sweep expires it, and voids the hold
        store.payments.expiry_s = 0 if flow == "cash_expired" else DEFAULT_PAYMENT_EXPIRY_S

    def run(self, point: KillPoint, timeout_s: float = 30.0) -> RunOutcome:
        """Run one kill point: the flow, the recovery (killed too if asked), the checks."""
        self._prepare(point.flow)
        kfolder = self.folder / "kiosk"
        for name in ("pulses.log", "recovery_pulses.log"):
            (kfolder / name).unlink(missing_ok=True)
        before = _Before(
            frozenset(self.server.redemptions()),
            self.server.balance(MEMBER),
            frozenset(self._events()),
        )
        args = {
            "folder": str(kfolder), "server_url": self.server.url, "flow": point.flow,
            "member": MEMBER, "code": self.server.code(MEMBER),
            "kill_mode": point.mode, "kill_at": point.at,
            "payment_timeout_s": 0.3 if point.flow == "cash_timeout" else 30.0,
            "inject": self.inject,
        }  # fmt: skip
        kill_after = point.delay_s if point.mode == "random" else None
        child = self.zygote.run(args, kill_after, timeout_s)
        bad = _child_trouble(point, "flow", child)
        recovery = None
        if point.recovery_mode:
            recovery = self.zygote.run(
                {**args, "recover": True, "kill_mode": point.recovery_mode,
                 "kill_at": point.recovery_at},
                timeout_s=timeout_s,
            )  # fmt: skip
            bad += _child_trouble(point, "recovery", recovery)
        bad += self._check(point, before, child)
        return RunOutcome(child, bad, recovery)

    # ---- the invariants ------------------------------------------------------------------
    def _check(self, point: KillPoint, before: _Before, child: ChildRun) -> list[str]:
        bad: list[str] = []
        kfolder = self.folder / "kiosk"
        pulses_in_flow = _pulses(kfolder / "pulses.log")
        if len(pulses_in_flow) > 1:
            bad.append(f"{point}: pulsed {len(pulses_in_flow)} times in one transaction")
        if killed_recovery_pulses := _pulses(kfolder / "recovery_pulses.log"):
            bad.append(f"{point}: the killed recovery pulsed {killed_recovery_pulses}")
        kiosk = KioskSide(kfolder, self.server.url)
        try:
            if kiosk.journal.safe_mode:
                return [f"{point}: journal unreadable, safe mode: {kiosk.journal.safe_mode_reason}"]
            recovery_pulses: list[int] = []
            real_open = kiosk.locker.open
            kiosk.locker.open = lambda n: (recovery_pulses.append(n), real_open(n))[1]  # type: ignore[method-assign]
            for _ in range(2):
                kiosk.engine.settle()
            kiosk.restock_service().report_unfinished()  # as kiosk/wiring.py starts
            SyncWorker(kiosk.client, kiosk.outbox).run_once()  # the outbox, to the real server
            if recovery_pulses:
                bad.append(f"{point}: recovery pulsed compartments {recovery_pulses}")
            txns = {}
            for txn_id in kiosk.journal.all("txn"):
                txn, ctx = kiosk.engine.steps.load(txn_id)
                txns[txn_id] = (txn, ctx)
                if ctx.capture_refused:  # holds cannot expire on the manual clock: a bug
                    bad.append(f"{point}: txn {txn_id} capture refused: {ctx.capture_refused}")
                elif txn.state not in (TxnState.DONE, TxnState.VOIDED):
                    bad.append(f"{point}: txn {txn_id} left unfinished at {txn.state.name}")
            bad += _doors(point, pulses_in_flow, txns, kiosk)
            if left := kiosk.outbox.pending(1000):
                bad.append(f"{point}: {len(left)} outbox events not delivered once online")
            for alert in kiosk.outbox.alerts():
                bad.append(f"{point}: server refused {alert.event.kind}: {alert.reason}")
            bad += self._ledger(point, before, txns)
            counts = [e for i, e in self._events().items() if i not in before.events]
            reference = self.writes.get(point.flow, [])
            if len([e for e in counts if e["kind"] == "inventory"]) < _counted(
                point, child, reference
            ):
                bad.append(f"{point}: a count journalled in the flow never reached the server")
            bad += self.cabinet.follow(point, (t for t, _ in txns.values()), counts)
            bad += self.cabinet.check(point, self.server.stock(TOTES))
            self._clean(kiosk)
        finally:
            kiosk.close()
        return bad

    def _ledger(self, point: KillPoint, before: _Before, txns: dict) -> list[str]:
        bad: list[str] = []
        conn = self.server.store.db.connection()
        new = {
            r["txn_id"]: dict(r)
            for r in conn.execute("SELECT * FROM redemptions")
            if r["txn_id"] not in before.txns
        }
        if len(new) > 1:
            bad.append(f"{point}: {len(new)} server redemptions for one transaction")
        charged = 0
        taken: dict[int, int] = {}
        for txn_id, row in new.items():
            state = row["state"]
            if state == "held":
                bad.append(f"{point}: hold {txn_id} left open on the server")
            bad += _payment_check(point, conn, row)
            bad += _spin_rule(point, row)
            coupons = [
                c["code"]
                for c in conn.execute("SELECT code FROM coupons WHERE txn_id = ?", (txn_id,))
            ]
            known = txns.get(txn_id)
            wants_coupon = state == "captured" and (
                row["sku"] == COUPON.sku
                or (known and known[1].prize and known[1].prize.kind.value == "coupon")
            )
            if len(coupons) != (1 if wants_coupon else 0):
                bad.append(f"{point}: {txn_id} ({state}) has {len(coupons)} coupons")
            elif coupons and known and not _same_coupon(known[1], coupons[0]):
                bad.append(
                    f"{point}: {txn_id} receipt coupon {known[1].coupon_code} "
                    f"(sha256 {known[1].coupon_code_sha256}) != {coupons[0]}"
                )
            if state != "captured":
                continue
            if row["compartment"] is not None:
                taken[row["compartment"]] = taken.get(row["compartment"], 0) + 1
            if known is None:
                bad.append(f"{point}: server captured {txn_id} the journal does not know")
                continue
            txn, ctx = known
            if txn.compartment is not None and not _dispensed(txn):
                bad.append(f"{point}: {txn_id} charged without a confirmed door")
            prize = ctx.prize.points if ctx.prize and ctx.prize.kind.value == "points" else 0
            charged += txn.points - prize
        for txn_id, (txn, _ctx) in txns.items():
            if _dispensed(txn) and new.get(txn_id, {}).get("state") != "captured":
                bad.append(f"{point}: {txn_id} dispensed but the server has it {new.get(txn_id)}")
        delta = self.server.balance(MEMBER) - before.balance
        if delta != -charged:
            bad.append(f"{point}: balance moved {delta}, charges say {-charged}")
        for number in (1, 4):  # compartment 2 is the cabinet model's (txn_crash_cabinet.py)
            drop = COMPARTMENT_STOCK - self.server.stock(number)
            if drop != taken.get(number, 0):
                bad.append(
                    f"{point}: compartment {number} stock fell {drop}, {taken.get(number, 0)} charged"
                )
        uploads = [
            json.loads(e["payload"])["txn_id"]
            for eid, e in self._events().items()
            if eid not in before.events and e["kind"] == "offline_redemption"
        ]
        offline_out = sorted(t for t, (txn, _) in txns.items() if txn.offline and _dispensed(txn))
        if sorted(uploads) != offline_out:
            bad.append(f"{point}: offline uploads {uploads} for dispensed offline {offline_out}")
        return bad

    def _events(self) -> dict[str, dict]:
        rows = self.server.store.db.connection().execute("SELECT * FROM kiosk_events")
        return {r["event_id"]: dict(r) for r in rows}

    def _clean(self, kiosk: KioskSide) -> None:
        """Leave the next run a kiosk with nothing pending: a fresh floor, no flags, no queue."""
        forget_finished(kiosk.engine.steps, older_than_s=-1, now=time.time())
        for event in kiosk.outbox.pending(1000):  # already reported as a violation
            kiosk.outbox.settle([_applied(event.event_id)])
        for alert in kiosk.outbox.alerts():
            kiosk.outbox.acknowledge(alert.alert_id)
        tables = (
            "receipt_queue",
            "offline_spends",
            "compartment_flags",
            SESSION_TABLE,
            COUNT_TABLE,
        )
        for table in tables:
            for key in list(kiosk.journal.all(table)):
                kiosk.journal.delete(table, key)


def _doors(point: KillPoint, pulses: list[int], txns: dict, kiosk: KioskSide) -> list[str]:
    """A pulsed door was journalled first, and ends charged or flagged for a staff check."""
    bad = []
    for number in pulses:
        opened = [
            t for t, _ in txns.values()
            if t.compartment == number and any(s is TxnState.DOOR_OPENING for s, _ in t.history)
        ]  # fmt: skip
        if not opened:
            bad.append(f"{point}: door {number} pulsed without DOOR_OPENING journalled first")
        elif not all(_dispensed(t) or t.needs_check for t in opened):
            bad.append(f"{point}: door {number} pulsed, neither dispensed nor needs-check")
        elif any(t.needs_check for t in opened) and not kiosk.journal.get(
            "compartment_flags", str(number)
        ):
            bad.append(f"{point}: door {number} needs a check but is not flagged")
    return bad


def _spin_rule(point: KillPoint, row: dict) -> list[str]:
    """A drawn spin is final: only a gift behind a door the kiosk could not confirm is voided
    (docs/transactions.md, "The wheel's rule")."""
    if row["kind"] != "spin" or row["state"] not in ("voided", "expired"):
        return []
    gift = row["compartment"] is not None
    if not gift or not (row["void_reason"] or "").startswith("gift_not_dispensed"):
        return [f"{point}: spin {row['txn_id']} {row['state']} ({row['void_reason']})"]
    return []


def _payment_check(point: KillPoint, conn, row: dict) -> list[str]:
    if not row["payment_id"]:
        return []
    pay = conn.execute("SELECT status FROM payments WHERE id = ?", (row["payment_id"],)).fetchone()
    status, state = pay["status"], row["state"]
    if state == "captured" and status != "paid":
        return [f"{point}: {row['txn_id']} captured with its payment {status}"]
    if state in ("voided", "expired") and status in ("pending", "paid"):
        return [f"{point}: {row['txn_id']} {state} with its payment left {status}"]
    return []


def _child_trouble(point: KillPoint, what: str, run: ChildRun) -> list[str]:
    if run.hung:
        return [f"{point}: {what} child hung; stderr: {run.stderr[-500:]}"]
    if run.rc not in (0, -signal.SIGKILL):
        return [f"{point}: {what} child failed ({run.rc}): {run.stderr[-800:]}"]
    return []


def _dispensed(txn) -> bool:
    return any(s is TxnState.DISPENSED for s, _ in txn.history)


def _applied(event_id: str):
    from kiosk.ports import EventResult

    return EventResult(event_id, "applied")


def _counted(point: KillPoint, child: ChildRun, reference: list[str]) -> int:
    """Restock counts the flow is known to have journalled: the writes the child reported, and
    the one it was killed right after (before it could report it)."""
    label = f"put {COUNT_TABLE}"
    n = child.writes.count(label)
    if point.mode == "after" and 0 < point.at <= len(reference) and len(child.writes) < point.at:
        n += reference[point.at - 1] == label
    return n


def _pulses(path: Path) -> list[int]:
    """Members' pulses in the log (staff's restock pulses are written r<n>)."""
    try:
        return [int(x) for x in path.read_text().split() if x.isdigit()]
    except FileNotFoundError:
        return []


def run_campaign(
    folder: Path,
    flows: tuple[str, ...] = FLOWS,
    random_kills: int = 0,
    rng: random.Random | None = None,
    every_write: bool = True,
    recovery_crashes: tuple[tuple[str, str, str], ...] = RECOVERY_CRASHES,
    recovery_writes: int | None = None,
    reference_runs: int = 3,
    progress=None,
) -> CampaignResult:
    """Kill every flow before and after each of its journal writes; kill the recovery of the
    ``recovery_crashes`` states (of these flows) before and after each of its first
    ``recovery_writes`` writes (None: all); then kill at random moments within each flow's
    measured duration (the shortest of ``reference_runs`` uninterrupted runs)."""
    rng = rng or random.Random(1)
    result = CampaignResult()
    campaign = Campaign(folder)
    campaign.writes = result.writes_per_flow

    def run(point: KillPoint) -> RunOutcome:
        outcome = campaign.run(point)
        result.add(point, outcome)
        if progress:
            progress(result)
        return outcome

    try:
        for flow in flows:  # the shortest of a few runs: the first one is often slow
            durations = []
            for _ in range(reference_runs):
                ref = run(KillPoint(flow, "none"))
                if not ref.child.finished:
                    result.violations.append(f"{flow}: the uninterrupted run did not finish")
                durations.append(ref.child.duration_s or 0.0)
                if result.writes_per_flow.setdefault(flow, ref.child.writes) != ref.child.writes:
                    result.missed.append(f"{flow}: uninterrupted runs wrote different steps")
            result.writes_per_flow[flow] = ref.child.writes
            result.duration_per_flow[flow] = min(durations)
        if every_write:
            for flow in flows:
                for at in range(1, len(result.writes_per_flow[flow]) + 1):
                    run(KillPoint(flow, "before", at))
                    run(KillPoint(flow, "after", at))
        for flow, crash_mode, label in recovery_crashes:
            if flow not in flows:
                continue
            at = result.writes_per_flow[flow].index(label) + 1
            for mode in ("before", "after"):
                n = 1
                while recovery_writes is None or n <= recovery_writes:
                    point = KillPoint(flow, crash_mode, at, recovery_mode=mode, recovery_at=n)
                    outcome = run(point)
                    if outcome.recovery is None or not outcome.recovery.killed:
                        break  # the recovery finished in fewer writes: all of them are done
                    n += 1
        for _ in range(random_kills):
            flow = rng.choice(flows)
            run(KillPoint(flow, "random", delay_s=rng.uniform(0, result.duration_per_flow[flow])))
    finally:
        cab = campaign.cabinet
        result.cabinet_counts, result.cabinet_gifts = cab.counts, cab.gifts
        result.cabinet_refills = cab.refills
        campaign.close()
    return result


def _same_coupon(ctx, code: str) -> bool:
    """The journal names the server's coupon: in clear until the transaction is done, then
    by its SHA-256 and last 4 characters only (no code in clear once its receipt is out)."""
    if ctx.coupon_code is not None:
        return ctx.coupon_code == code
    digest = hashlib.sha256(code.encode()).hexdigest()
    return ctx.coupon_code_sha256 == digest and ctx.coupon_code_last4 == code[-4:]
