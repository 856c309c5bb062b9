"""SIGKILL campaign against the journal: kills run, steps acknowledged, invariant violations.

A victim process journals puts and deletes (records of 60 B to 1.5 KB, compaction every
16 KB of log so compactions get killed too) and prints each acknowledged step; it is killed
with SIGKILL at a random moment, the journal is reopened and checked: it opens without safe
mode and holds every acknowledged step, and at most the one step in flight, with no partial
record. The same state folder carries on from kill to kill.

    PYTHONPATH=. python bench/journal_crash.py [--kills 200] [--max-run-s 0.5] [--seed N] [--dir DIR]

Goal (issue): 0 unreadable journals after SIGKILL.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from tests.kiosk.storage.crash_helper import run_campaign


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--max-run-s", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--dir", default=None, help="where to make the state folder (not tmpfs)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="journal-crash-", dir=args.dir) as folder:
        result = run_campaign(Path(folder), args.kills, random.Random(seed), args.max_run_s)
    elapsed = time.perf_counter() - started
    unreadable = sum("safe mode" in v for v in result.violations)
    print(f"seed {seed}, {elapsed:.1f} s\n")
    print(
        "| kills run | steps acknowledged | reopens with a snapshot | unreadable journals | invariant violations |"
    )
    print("|---:|---:|---:|---:|---:|")
    print(
        f"| {result.kills} | {result.steps_acked} | {result.compactions_seen} | {unreadable} "
        f"| {len(result.violations)} |"
    )
    for violation in result.violations:
        print(f"- {violation}")
    return 1 if result.violations else 0


if __name__ == "__main__":
    sys.exit(main())
