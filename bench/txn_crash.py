"""SIGKILL campaign over the transaction engine: kill points run, and kill points that broke an
invariant.

Each flow (redeem a gift, a coupon, points + cash paid / cancelled / timed out at the kiosk /
expired at the server, wheel spins certain to win points, a coupon or a gift behind a door,
an offline redemption and its upload, a jammed door, and staff restocking the tote bags'
compartment with members taking totes around the count, online and offline, with the real
sync worker uploading, down to an empty compartment) runs in a child kiosk process against
the real store server on loopback. The child is killed with SIGKILL right before and right
after each of its journal writes; some crash states are then recovered by a child that is
itself killed before and after each recovery write; then the flows are killed at random
moments drawn within each flow's measured duration. After each kill the kiosk restarts on the
same state folder, recovers, drains its outbox to the server, and the invariants are checked
against the server's ledger, the journal and the locker's pulse log (see
tests/kiosk/services/txn_crash.py for the list), and the server's stock of the totes'
compartment against a model of what the cabinet holds (txn_crash_cabinet.py).

    .venv/bin/python bench/txn_crash.py [--random 1000] [--flows redeem,cash] [--seed N]

Goal (issue): 0 kill points violating an invariant, at every journal step of every flow and at
1,000 random points.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

# The campaign lives with the tests (tests/kiosk/services/txn_crash.py): put the repo root on
# the path so `python bench/txn_crash.py` works from the root without PYTHONPATH=.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.kiosk.services.txn_crash import FLOWS, KINDS, run_campaign

SHOW = 10  # violations listed in full


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", type=int, default=1000, help="random kill points")
    parser.add_argument("--flows", default=",".join(FLOWS))
    parser.add_argument("--no-every-write", action="store_true")
    parser.add_argument("--no-recovery", action="store_true", help="no kills during recovery")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--dir", default=None, help="where to make the state folders (not tmpfs)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    flows = tuple(args.flows.split(","))
    unknown = set(flows) - set(FLOWS)
    if unknown:
        parser.error(f"unknown flows {sorted(unknown)}; known: {', '.join(FLOWS)}")
    started = time.perf_counter()

    def progress(r) -> None:
        if r.runs % 100 == 0:
            print(
                f"  {r.runs} runs, {r.total_points} kill points, {r.total_violated} violated",
                file=sys.stderr, flush=True,
            )  # fmt: skip

    extra = {"recovery_crashes": ()} if args.no_recovery else {}
    with tempfile.TemporaryDirectory(prefix="txn-crash-", dir=args.dir) as folder:
        r = run_campaign(
            Path(folder), flows, args.random, random.Random(seed),
            every_write=not args.no_every_write, progress=progress, **extra,
        )  # fmt: skip
    elapsed = time.perf_counter() - started
    print(f"seed {seed}, {elapsed:.0f} s, {r.runs} child runs\n")
    print("| flow | journal writes | duration ms | kill points at writes |")
    print("|---|---:|---:|---:|")
    for flow, writes in r.writes_per_flow.items():
        points = 0 if args.no_every_write else 2 * len(writes)
        print(f"| {flow} | {len(writes)} | {r.duration_per_flow[flow] * 1000:.0f} | {points} |")
    print("\n| kill points | run | killed by SIGKILL | violated an invariant |")
    print("|---|---:|---:|---:|")
    for kind in KINDS:
        print(f"| {kind} | {r.kill_points[kind]} | {r.killed[kind]} | {r.violated[kind]} |")
    print(f"| **all** | {r.total_points} | {sum(r.killed.values())} | {r.total_violated} |")
    print(
        f"\nrandom kills: {r.random_mid_flow} mid-flow, {r.random_after_done} after the flow had"
        f" finished; recovery runs killed at their write: {r.recovery_killed} of"
        f" {r.kill_points['recovery']} (the others finished before it)"
    )
    print(
        f"compartment 2 (the stock invariant): {r.cabinet_counts} restock counts and"
        f" {r.cabinet_gifts} totes out followed, {r.shelf_empty} times a member found it empty,"
        f" refilled {r.cabinet_refills} times for a flow that takes a tote first"
    )
    for missed in r.missed:
        print(f"not killed: {missed}")
    print(
        f"\n{r.total_violated} kill points violated an invariant, and {r.violated_reference}"
        f" uninterrupted runs ({len(r.violations)} messages)"
    )
    for violation in r.violations[:SHOW]:
        print(f"- {violation}")
    if len(r.violations) > SHOW:
        print(f"- ... {len(r.violations) - SHOW} more")
    return 1 if r.violations or r.missed else 0


if __name__ == "__main__":
    sys.exit(main())
