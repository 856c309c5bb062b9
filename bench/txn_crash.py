"""SIGKILL campaign over the transaction engine: kill points run, and invariant violations.

Each flow (redeem a gift, a coupon, points + cash, a wheel spin, an offline redemption, a
jammed door) runs in a child kiosk process against the real store server on loopback; the
child is killed with SIGKILL right before and right after each of its journal writes, then
at random moments; after each kill the kiosk restarts on the same state folder, recovery
runs, and the invariants are checked against the server's ledger, the journal and the
locker's pulse log (see tests/kiosk/services/txn_crash.py for the list).

    PYTHONPATH=. python bench/txn_crash.py [--random 1000] [--flows redeem,cash] [--seed N]

Goal (issue): 0 violations at every journal step of every flow and at 1,000 random points.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from tests.kiosk.services.txn_crash import FLOWS, run_campaign


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", type=int, default=1000, help="random kill points")
    parser.add_argument("--flows", default=",".join(FLOWS))
    parser.add_argument("--no-every-write", action="store_true")
    parser.add_argument("--max-delay-s", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--dir", default=None, help="where to make the state folders (not tmpfs)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    flows = tuple(args.flows.split(","))
    started = time.perf_counter()

    def progress(r) -> None:
        if r.runs % 50 == 0:
            print(f"  {r.runs} runs, {len(r.violations)} violations", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="txn-crash-", dir=args.dir) as folder:
        result = run_campaign(
            Path(folder), flows, args.random, random.Random(seed),
            every_write=not args.no_every_write, max_delay_s=args.max_delay_s, progress=progress,
        )  # fmt: skip
    elapsed = time.perf_counter() - started
    print(f"seed {seed}, {elapsed:.0f} s\n")
    print("| flow | journal writes | kill points (before + after each) |")
    print("|---|---:|---:|")
    for flow, writes in result.writes_per_flow.items():
        print(f"| {flow} | {writes} | {2 * writes if not args.no_every_write else 0} |")
    print("\n| runs | killed by SIGKILL | random points | invariant violations |")
    print("|---:|---:|---:|---:|")
    print(f"| {result.runs} | {result.killed} | {args.random} | {len(result.violations)} |")
    for violation in result.violations:
        print(f"- {violation}")
    return 1 if result.violations else 0


if __name__ == "__main__":
    sys.exit(main())
