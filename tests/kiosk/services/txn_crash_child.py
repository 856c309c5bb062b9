"""The victim of the transaction crash campaign: one kiosk process running one flow, or the
start-up recovery.

    python -m tests.kiosk.services.txn_crash_child --zygote
    python -m tests.kiosk.services.txn_crash_child '<json args>'      (one run, for debugging)

The zygote imports the kiosk once and then forks one child per JSON line on its stdin, so a
kill point costs a fork instead of a second of imports; each child is a separate process the
parent kills with SIGKILL by its pid. On its stdout the zygote writes ``PID n``, then the
child's lines, then ``EXIT n rc`` once the child is gone.

A child kills itself with SIGKILL right before or right after journal write number
``kill_at`` (``kill_mode`` "before" / "after"), or runs to the end and waits for the parent's
SIGKILL at a random moment ("random"). It reports ``READY`` when the flow starts, ``W n op
table label`` after each journal write and ``DONE`` when the flow has returned. Every call to
``Locker.open`` is appended (fsync'd) to ``pulses.log`` (``recovery_pulses.log`` for a
recovery run) first, so the parent can count pulses a kill would otherwise hide.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

import requests

from kiosk.errors import Unreachable
from kiosk.services.txn_steps import MSG_NETWORK
from kiosk.storage.atomic import fsync_dir
from kiosk.sync.worker import SyncWorker

from .rig import COUPON, EARBUDS, MUG, TOTE, KioskSide
from .txn_crash_restock import RESTOCK_FLOWS, run_restock_flow

WHEEL = "LUCKY"


def _say(line: str) -> None:
    # one write(2) per line: a pipe write under PIPE_BUF is atomic, so a SIGKILL never leaves
    # half a line for the zygote's EXIT to run into
    os.write(1, (line + "\n").encode())


def _record_pulse(path: Path, compartment: int | str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{compartment}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)


class _Killer:
    """Counts the journal writes that change something and kills the process at one of them."""

    def __init__(self, journal, mode: str, at: int) -> None:
        self.journal, self.mode, self.at, self.writes = journal, mode, at, 0
        real_put, real_delete = journal.put, journal.delete

        def put(table, key, record):
            label = record.get("state", "") if table == "txn" else ""
            self._around(lambda: real_put(table, key, record), "put", table, label)

        def delete(table, key):
            if journal.get(table, key) is None:  # writes nothing: not a journal step
                return False
            return self._around(lambda: real_delete(table, key), "del", table, "")

        journal.put, journal.delete = put, delete

    def _around(self, write, op: str, table: str, label: str):
        if threading.current_thread() is not threading.main_thread():
            return write()  # the sync worker's: its timing varies, so random kills cover it
        self.writes += 1
        if self.mode == "before" and self.writes == self.at:
            os.kill(os.getpid(), signal.SIGKILL)
        out = write()
        if self.mode == "after" and self.writes == self.at:
            os.kill(os.getpid(), signal.SIGKILL)
        _say(f"W {self.writes} {op} {table} {label}".rstrip())
        return out


def run(args: dict) -> int:
    """One flow (or, with ``recover``, the start-up recovery) in this process."""
    folder = Path(args["folder"])
    kiosk = KioskSide(
        folder, args["server_url"], payment_timeout_s=args.get("payment_timeout_s", 30.0)
    )
    killer = _Killer(kiosk.journal, args["kill_mode"], args.get("kill_at", 0))
    pulses = folder / ("recovery_pulses.log" if args.get("recover") else "pulses.log")
    real_open = kiosk.locker.open

    kiosk.restocking = False  # txn_crash_restock sets it around staff's pulses

    def open_and_record(number: int):
        _record_pulse(pulses, f"r{number}" if kiosk.restocking else number)
        return real_open(number)

    kiosk.locker.open = open_and_record  # type: ignore[method-assign]  # the engine and restock
    _inject(kiosk, args.get("inject", ""))
    if args.get("recover"):
        _say("READY")
        kiosk.engine.settle()  # what kiosk/wiring.py does at start-up, then the sync worker
        kiosk.restock_service().report_unfinished()
        SyncWorker(kiosk.client, kiosk.outbox).run_once()
        _say(f"DONE recovered writes={killer.writes}")
        return _end(args)

    # the member's code (the parent has the store's key) resolved here: the session online
    # holds and spins carry, and the code an offline redemption uploads
    who = kiosk.member(args["member"], 10**6, code=args["code"])
    flow = args["flow"]
    if flow == "jam":
        kiosk.sim.jam(1)
    if flow == "offline":
        kiosk.link.cut()

    def pay(p) -> None:
        if p.pay_url:
            requests.post(
                f"{args['server_url']}/v1/payments/{p.pay_url.rsplit('/', 1)[-1]}/simulate-paid",
                timeout=5,
            )

    def cancel(p) -> None:
        if p.pay_url:  # the member taps cancel on the payment screen
            kiosk.engine.cancel_payment()

    _say("READY")
    if flow in RESTOCK_FLOWS:
        _say(f"DONE {run_restock_flow(kiosk, flow, who)} writes={killer.writes}")
        return _end(args)
    if flow in ("redeem", "jam"):
        result = kiosk.engine.redeem(who, MUG)
    elif flow == "offline":  # within the rig's floor limits (500 a member, 1,000 a kiosk)
        result = kiosk.engine.redeem(who, TOTE)
        kiosk.link.up = True  # back online: the sync worker uploads the offline spend
        SyncWorker(kiosk.client, kiosk.outbox).run_once()
    elif flow == "coupon":
        result = kiosk.engine.redeem(who, COUPON)
    elif flow == "cash":
        result = kiosk.engine.redeem(who, EARBUDS, pay)
    elif flow == "cash_cancel":
        result = kiosk.engine.redeem(who, EARBUDS, cancel)
    elif flow in ("cash_timeout", "cash_expired"):  # nobody pays
        result = kiosk.engine.redeem(who, EARBUDS)
    elif flow.startswith("spin"):  # the parent left one segment in the draw
        result = kiosk.engine.spin(who, kiosk.wheel(WHEEL))
    else:
        raise SystemExit(f"unknown flow {flow}")
    _say(f"DONE {result.outcome.value} writes={killer.writes}")
    return _end(args)


def _inject(kiosk: KioskSide, bug: str) -> None:
    """Break the engine on purpose, so a test can see that the campaign notices."""
    if bug == "no_door_journal":  # the pulse without DOOR_OPENING journalled first
        real_save = kiosk.engine.steps.save

        def save(txn, ctx):
            if txn.state.name != "DOOR_OPENING":
                real_save(txn, ctx)

        kiosk.engine.steps.save = save
    elif bug == "no_upload":  # an offline spend that never reaches the outbox
        kiosk.engine.steps.outbox = Override(kiosk.outbox, add=lambda *a, **kw: None)
    elif bug == "unstamped_counts":  # counts without their stamp: the server takes them as now
        real_add = kiosk.outbox.add

        def add(kind, payload, **kw):
            if kind == "inventory":
                payload = {k: v for k, v in payload.items() if k in ("compartment", "sku", "count")}
            return real_add(kind, payload, **kw)

        kiosk.outbox.add = add
    elif bug == "void_drawn_spins":  # the old rule: a spin the kiosk cannot use is voided
        engine = kiosk.engine

        def unusable(*a, **kw):
            raise Unreachable("planted: the prize is unusable")

        engine.steps.spin_held = unusable
        engine._spin_unsettled = lambda txn, ctx, what, exc: engine.steps.void(
            txn, ctx, what, MSG_NETWORK, present=True
        )
    elif bug:
        raise SystemExit(f"unknown bug {bug}")


def _end(args: dict) -> int:
    if args["kill_mode"] == "random":
        signal.pause()  # the parent's SIGKILL ends it, as it would a kiosk at any moment
    return 0


class Override:
    """``obj`` with some attributes replaced (the locker's ``open`` that records the pulse)."""

    def __init__(self, obj, **attrs) -> None:
        self._obj = obj
        self.__dict__.update(attrs)

    def __getattr__(self, name):
        return getattr(self._obj, name)


def _child(args: dict) -> None:
    """In the forked child: stderr to the run's file, run, and leave without the zygote's
    cleanup (no atexit, no flushing of buffers the zygote owns)."""
    fd = os.open(args["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 2)
    os.close(fd)
    code = 1
    try:
        code = run(args)
    except BaseException:  # SystemExit too: the parent reads the traceback from the file
        traceback.print_exc()
        sys.stderr.flush()
    os._exit(code)


def zygote() -> int:
    """Fork one child per JSON line on stdin; one at a time, each reaped before the next."""
    _say("ZYGOTE")
    for line in sys.stdin:
        if not line.strip():
            continue
        args = json.loads(line)
        go_r, go_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(go_w)
            os.read(go_r, 1)  # the PID line goes out first: the parent needs it to kill
            os.close(go_r)
            _child(args)
        os.close(go_r)
        _say(f"PID {pid}")
        os.write(go_w, b"g")
        os.close(go_w)
        _, status = os.waitpid(pid, 0)
        _say(f"EXIT {pid} {os.waitstatus_to_exitcode(status)}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--zygote"]:
        sys.exit(zygote())
    sys.exit(run(json.loads(sys.argv[1])))
