"""The victim of the transaction crash campaign: one kiosk process running one flow.

    python -m tests.kiosk.services.txn_crash_child '<json args>'

It kills itself with SIGKILL right before or right after journal write number ``kill_at``
(``kill_mode`` "before" / "after"), or runs to the end and waits for the parent's SIGKILL at
a random moment ("random"). Every call to ``Locker.open`` is appended (fsync'd) to
``pulses.log`` first, so the parent can count pulses a kill would otherwise hide.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import requests

from kiosk.storage.atomic import fsync_dir

from .rig import COUPON, EARBUDS, MUG, TOTE, KioskSide, member


def _record_pulse(folder: Path, compartment: int) -> None:
    fd = os.open(folder / "pulses.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{compartment}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(folder)


def main(raw: str) -> int:
    args = json.loads(raw)
    folder = Path(args["folder"])
    kiosk = KioskSide(folder, args["server_url"])
    writes = 0
    kill_at, mode = args.get("kill_at", 0), args["kill_mode"]

    def counted(real):
        def write(*a, **kw):
            nonlocal writes
            writes += 1
            if mode == "before" and writes == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            out = real(*a, **kw)
            if mode == "after" and writes == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return out

        return write

    kiosk.journal.put = counted(kiosk.journal.put)  # type: ignore[method-assign]
    kiosk.journal.delete = counted(kiosk.journal.delete)  # type: ignore[method-assign]
    real_open = kiosk.locker.open

    def open_and_record(number: int):
        _record_pulse(folder, number)
        return real_open(number)

    kiosk.engine.locker = RecordingLocker(kiosk.locker, open_and_record)

    who = member(args["member"], 10**6)
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

    print("READY", flush=True)
    if flow in ("redeem", "jam"):
        result = kiosk.engine.redeem(who, MUG)
    elif flow == "offline":  # within the rig's floor limits (500 a member, 1,000 a kiosk)
        result = kiosk.engine.redeem(who, TOTE)
    elif flow == "coupon":
        result = kiosk.engine.redeem(who, COUPON)
    elif flow == "cash":
        result = kiosk.engine.redeem(who, EARBUDS, pay)
    elif flow == "spin":
        result = kiosk.engine.spin(who, "LUCKY", 100)
    else:
        raise SystemExit(f"unknown flow {flow}")
    print(f"DONE {result.outcome.value} writes={writes}", flush=True)
    if mode == "random":
        signal.pause()  # the parent's SIGKILL ends it, as it would a kiosk at any moment
    return 0


class RecordingLocker:
    """The Locker port with `open` replaced by one that records the pulse first."""

    def __init__(self, locker, open_fn) -> None:
        self._locker = locker
        self.open = open_fn

    def __getattr__(self, name):
        return getattr(self._locker, name)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
