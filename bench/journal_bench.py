"""Cost of a durable journal step against a sqlite3 WAL (synchronous=FULL) baseline.

For 100, 1,000 and 10,000 live records, the same step mix runs on the journal and on sqlite3 in
the same process and folder: put a new record, update it, delete the oldest (so the number of
live records stays constant), each step durable before it returns. Per step: median and p95
time, fsync calls (os.fsync counted; sqlite3 calls fsync from C, so "-"), and bytes handed to
write() (/proc/self/io wchar, which sees the journal's and sqlite's writes alike). Then one
compaction at that size and the amortised cost per step it adds under the automatic policy
(compact when the log reaches max(256 KiB, snapshot size)).

    PYTHONPATH=. python bench/journal_bench.py [--steps 1500] [--dir DIR]

Then what the journal costs a member session, scan to receipt, and the time it adds on a Pi's
SD card (bench/journal_session_cost.py, runnable alone; --no-sessions skips it).

Goals (issue): <= 1 fsync and <= 4 KB written per step whatever the size; <= 2x the sqlite3
baseline and flat from 100 to 10,000 live records.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import journal_session_cost  # bench/, beside this script

from kiosk.storage import Journal
from kiosk.storage.journal import COMPACT_MIN_BYTES

SIZES = (100, 1_000, 10_000)
GOAL_FSYNCS, GOAL_BYTES, GOAL_RATIO = 1, 4096, 2.0


def record(i: int, state: str) -> dict[str, object]:
    """A transaction-sized record (about 200 bytes of JSON)."""
    return {
        "txn_id": f"5f0c6a2e-3b1d-4c8e-9a7f-{i:012d}",
        "state": state,
        "member": f"M{i:08d}",
        "points": 500,
        "cash_cents": 0,
        "compartment": i % 12 + 1,
        "created": "2026-05-09T07:35:25Z",
    }


def wchar() -> int:
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("wchar:"):
                return int(line.split()[1])
    return 0


def run_steps(
    live: int, steps: int, put: Callable[[str, dict], None], delete: Callable[[str], None]
) -> tuple[list[float], list[int]]:
    """Time each step of the put-new / update / delete-oldest mix; also bytes written."""
    times: list[float] = []
    written: list[int] = []
    oldest, newest = 0, live
    for n in range(steps):
        kind = n % 3
        before_b, before_t = wchar(), time.perf_counter()
        if kind == 0:
            put(f"t{newest}", record(newest, "HELD"))
        elif kind == 1:
            put(f"t{newest}", record(newest, "DONE"))
            newest += 1
        else:
            delete(f"t{oldest}")
            oldest += 1
        times.append(time.perf_counter() - before_t)
        written.append(wchar() - before_b)
    return times, written


def bench_journal(folder: Path, live: int, steps: int) -> dict[str, float]:
    fsyncs = [0]
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        fsyncs[0] += 1
        real_fsync(fd)

    with Journal.open(folder, compact_min_bytes=1 << 40) as j:
        for i in range(live):
            j.put("txn", f"t{i}", record(i, "DONE"))
        j.compact()
        appended_before = j.stats().bytes_appended
        os.fsync = counting_fsync  # type: ignore[assignment]
        try:
            times, written = run_steps(
                live, steps, lambda k, r: j.put("txn", k, r), lambda k: j.delete("txn", k)
            )
        finally:
            os.fsync = real_fsync
        frame_bytes = (j.stats().bytes_appended - appended_before) / steps
        started = time.perf_counter()
        j.compact()
        compact_s = time.perf_counter() - started
        snapshot = j.stats().snapshot_bytes
    # Under the automatic policy a compaction (snapshot bytes, 3 fsyncs) comes once the log
    # holds max(COMPACT_MIN_BYTES, snapshot) bytes, i.e. every that / frame_bytes steps.
    every = max(COMPACT_MIN_BYTES, snapshot) / frame_bytes
    return {
        "median": statistics.median(times),
        "p95": statistics.quantiles(times, n=20)[-1],
        "fsyncs": fsyncs[0] / steps,
        "bytes": statistics.mean(written),
        "max_bytes": max(written),
        "compact_s": compact_s,
        "snapshot": snapshot,
        "amortised_bytes": statistics.mean(written) + snapshot / every,
        "amortised_fsyncs": fsyncs[0] / steps + 3 / every,
    }


def bench_sqlite(folder: Path, live: int, steps: int) -> dict[str, float]:
    import json

    db = sqlite3.connect(folder / "baseline.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE kv (tbl TEXT, key TEXT, record TEXT, PRIMARY KEY (tbl, key))")
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO kv VALUES ('txn', ?, ?)",
        ((f"t{i}", json.dumps(record(i, "DONE"))) for i in range(live)),
    )
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    times, written = run_steps(
        live,
        steps,
        lambda k, r: db.execute(
            "INSERT OR REPLACE INTO kv VALUES ('txn', ?, ?)", (k, json.dumps(r))
        ),
        lambda k: db.execute("DELETE FROM kv WHERE tbl = 'txn' AND key = ?", (k,)),
    )
    db.close()
    return {
        "median": statistics.median(times),
        "p95": statistics.quantiles(times, n=20)[-1],
        "bytes": statistics.mean(written),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--dir", default=None, help="where to make temp folders (not tmpfs)")
    parser.add_argument("--no-sessions", action="store_true", help="skip the member sessions")
    args = parser.parse_args(argv)
    rows = []
    for live in SIZES:
        with tempfile.TemporaryDirectory(prefix="journal-bench-", dir=args.dir) as folder:
            journal = bench_journal(Path(folder) / "journal", live, args.steps)
            baseline = bench_sqlite(Path(folder), live, args.steps)
        rows.append((live, journal, baseline))

    ms = 1000
    print(f"{args.steps} steps per size (put new / update / delete oldest), durable each\n")
    print(
        "| live records | journal median ms | journal p95 ms | sqlite3 WAL FULL median ms "
        "| sqlite3 p95 ms | journal / sqlite3 | fsyncs per step | bytes per step (max) "
        "| sqlite3 bytes per step | compaction ms (snapshot KB) | amortised bytes / fsyncs per step |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for live, j, s in rows:
        print(
            f"| {live:,} | {j['median'] * ms:.3f} | {j['p95'] * ms:.3f} | {s['median'] * ms:.3f} "
            f"| {s['p95'] * ms:.3f} | {j['median'] / s['median']:.2f}x | {j['fsyncs']:.2f} "
            f"| {j['bytes']:.0f} ({j['max_bytes']}) | {s['bytes']:.0f} "
            f"| {j['compact_s'] * ms:.1f} ({j['snapshot'] / 1024:.0f}) "
            f"| {j['amortised_bytes']:.0f} / {j['amortised_fsyncs']:.3f} |"
        )
    flat = max(j["median"] for _, j, _ in rows) / min(j["median"] for _, j, _ in rows)
    goals = {
        f"<= {GOAL_FSYNCS} fsync per step": all(j["fsyncs"] <= GOAL_FSYNCS for _, j, _ in rows),
        f"<= {GOAL_BYTES} bytes per step": all(j["max_bytes"] <= GOAL_BYTES for _, j, _ in rows),
        f"<= {GOAL_RATIO}x sqlite3": all(
            j["median"] <= GOAL_RATIO * s["median"] for _, j, s in rows
        ),
        f"flat 100 -> 10,000 (median spread {flat:.2f}x, goal <= 1.5x)": flat <= 1.5,
    }
    print()
    for goal, met in goals.items():
        print(f"- {goal}: {'met' if met else 'NOT met'}")
    if not args.no_sessions:
        print()
        journal_session_cost.main([] if args.dir is None else ["--dir", args.dir])
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
