"""The proof's steps and their outcome: one row per step (seconds, passed or not, a short
detail), printed as a markdown table that goes into the README as it is."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from provisioning.target import ProvisionError


@dataclass(frozen=True)
class StepRow:
    step: str
    seconds: float
    ok: bool
    detail: str = ""

    @property
    def result(self) -> str:
        return ("ok" if self.ok else "FAILED") + (f": {self.detail}" if self.detail else "")


def format_table(rows: list[StepRow]) -> str:
    """The markdown table (step, seconds, result) and a total line."""
    lines = ["| step | seconds | result |", "|---|---:|---|"]
    lines += [f"| {r.step} | {r.seconds:.1f} | {r.result.replace('|', '/')} |" for r in rows]
    total = sum(r.seconds for r in rows)
    failed = [r.step for r in rows if not r.ok]
    verdict = f"FAILED: {', '.join(failed)}" if failed else "all passed"
    lines.append(f"| **total** | {total:.1f} | {verdict} |")
    return "\n".join(lines)


class Steps:
    """Runs the steps in order, timing each; stops at the first failure."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.rows: list[StepRow] = []
        self.clock = clock

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def run(self, name: str, action: Callable[[], str]) -> bool:
        """``action`` returns a short detail, or raises ProvisionError (what failed, and why)."""
        if not self.ok:
            return False
        print(f"\n== {name}", flush=True)
        start = self.clock()
        try:
            detail, ok = action(), True
        except ProvisionError as exc:
            detail, ok = str(exc), False
        row = StepRow(name, self.clock() - start, ok, detail)
        self.rows.append(row)
        print(f"-- {name}: {row.seconds:.1f} s, {row.result}", flush=True)
        return ok
