"""SIGKILL campaign against the journal, shared by the tests and bench/journal_crash.py.

Run as a script, it is the victim: it opens the journal in STATE_DIR and performs the steps
`steps(seed)` describes, printing "ack N" after step N returned (its fsync done). The parent
kills it with SIGKILL at a random moment, reopens the journal and checks that it opens without
safe mode and holds exactly the acknowledged steps, plus at most the one step in flight.

    python tests/kiosk/storage/crash_helper.py STATE_DIR SEED
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TABLE = "txn"
KEYS = 40  # few keys, so that deletes and replacements hit existing records
# Small, so that compactions (snapshot replace + log reset) happen often and get killed too.
COMPACT_MIN_BYTES = 16 * 1024
HERE = Path(__file__).resolve()
ROOT = HERE.parents[3]

Step = tuple[str, str, dict[str, Any] | None]  # ("put"|"del", key, record)
State = dict[str, dict[str, Any]]


def steps(seed: int) -> Iterator[Step]:
    """The endless, reproducible step sequence of one victim run."""
    rng = random.Random(seed)
    for i in range(10**9):
        key = f"k{rng.randrange(KEYS)}"
        if rng.random() < 0.3:
            yield ("del", key, None)
        else:
            # Sizes from ~60 B to ~1.5 KB, so writes can be cut at many points.
            yield ("put", key, {"seed": seed, "i": i, "pad": "x" * rng.randrange(1500)})


def apply(state: State, step: Step) -> State:
    """The state after `step` (a new dict)."""
    op, key, record = step
    new = dict(state)
    if op == "put":
        new[key] = record  # type: ignore[assignment]
    else:
        new.pop(key, None)
    return new


def victim(state_dir: str, seed: int) -> None:
    """The child process: journal steps forever, acknowledging each on stdout."""
    sys.path.insert(0, str(ROOT))
    from kiosk.storage import Journal

    journal = Journal.open(state_dir, compact_min_bytes=COMPACT_MIN_BYTES)
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for n, (op, key, record) in enumerate(steps(seed), start=1):
        if op == "put":
            journal.put(TABLE, key, record)  # type: ignore[arg-type]
        else:
            journal.delete(TABLE, key)
        out.write(f"ack {n}\n")
        out.flush()


@dataclass
class CampaignResult:
    """What a campaign saw: kills run and every invariant violation, described."""

    kills: int = 0
    steps_acked: int = 0
    compactions_seen: int = 0
    violations: list[str] = field(default_factory=list)


def _read_acks(output: str) -> int:
    acked = 0
    for line in output.splitlines():
        if line.startswith("ack "):
            acked = int(line[4:])
    return acked


def run_campaign(
    state_dir: Path, kills: int, rng: random.Random, max_run_s: float = 0.3
) -> CampaignResult:
    """Kill `kills` victims at random moments in `state_dir`, checking the journal after each."""
    from kiosk.storage import Journal

    result = CampaignResult()
    model: State = {}
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for round_no in range(kills):
        seed = rng.randrange(2**31)
        child = subprocess.Popen(
            [sys.executable, str(HERE), str(state_dir), str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert child.stdout is not None
        first = child.stdout.readline()  # "ready": the journal is open, steps start now
        if first != b"ready\n":
            child.kill()
            _, err = child.communicate()
            result.violations.append(f"round {round_no}: victim failed to start: {err.decode()}")
            continue
        time.sleep(rng.uniform(0, max_run_s))
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate()
        if child.returncode != -signal.SIGKILL:
            result.violations.append(
                f"round {round_no}: victim exited {child.returncode}: {err.decode()}"
            )
        acked = _read_acks(out.decode())
        result.kills += 1
        result.steps_acked += acked
        # The state after the acknowledged steps, and after the one step possibly in flight.
        expected = model
        seq = steps(seed)
        for _ in range(acked):
            expected = apply(expected, next(seq))
        in_flight = apply(expected, next(seq))
        with Journal.open(state_dir) as journal:
            if journal.safe_mode:
                result.violations.append(f"round {round_no}: safe mode: {journal.safe_mode_reason}")
                break
            actual = journal.all(TABLE)
            result.compactions_seen += journal.stats().snapshot_bytes > 0
        if actual not in (expected, in_flight):
            lost = sorted(k for k in expected if actual.get(k) != expected[k])
            result.violations.append(
                f"round {round_no}: after {acked} acknowledged steps the journal differs "
                f"(keys {lost[:5]} ...)"
            )
        model = actual
    return result


if __name__ == "__main__":
    victim(sys.argv[1], int(sys.argv[2]))
