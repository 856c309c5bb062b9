"""Idempotent provisioning steps, the plan that runs them, and the report it prints.

A step first checks (reads only) whether the system already is as it should be. Only if not
does it apply, and then it checks again: a step whose check still finds work after applying
is reported failed, so "a second run changes nothing" is verified on every run, not hoped for.
"""

from __future__ import annotations

import enum
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from provisioning.target import ProvisionError

log = logging.getLogger(__name__)


class State(enum.Enum):
    """What a step's check found."""

    DONE = "done"  # already as wanted
    TODO = "todo"  # apply would change something
    SKIP = "skip"  # not asked for, or not possible here (the detail says why)


@dataclass(frozen=True)
class Finding:
    """A check's result: the state and, for people, what is there or what is missing."""

    state: State
    detail: str


def done(detail: str) -> Finding:
    return Finding(State.DONE, detail)


def todo(detail: str) -> Finding:
    return Finding(State.TODO, detail)


def skip(detail: str) -> Finding:
    return Finding(State.SKIP, detail)


class Step(ABC):
    """One part of a kiosk's set-up; ``name`` is what ``--skip`` takes."""

    name: str = ""
    title: str = ""

    @abstractmethod
    def check(self) -> Finding:
        """Whether the system already is as this step wants it; must change nothing."""

    @abstractmethod
    def apply(self) -> str:
        """Make it so; returns what was done. Raises ProvisionError with what to do."""


class Outcome(enum.Enum):
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    FAILED = "FAILED"
    PLANNED = "will change"  # dry run
    NOT_RUN = "not run"


@dataclass(frozen=True)
class StepResult:
    name: str
    outcome: Outcome
    detail: str


class Skipped(Step):
    """A step left out with ``--skip NAME``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def check(self) -> Finding:
        return skip(f"left out (--skip {self.name})")

    def apply(self) -> str:  # pragma: no cover - never TODO
        raise AssertionError("a skipped step has nothing to apply")


def _run_step(step: Step, dry_run: bool) -> StepResult:
    try:
        finding = step.check()
        if finding.state is State.DONE:
            return StepResult(step.name, Outcome.UNCHANGED, finding.detail)
        if finding.state is State.SKIP:
            return StepResult(step.name, Outcome.SKIPPED, finding.detail)
        if dry_run:
            return StepResult(step.name, Outcome.PLANNED, finding.detail)
        log.info("%s: %s", step.name, finding.detail)
        detail = step.apply()
        after = step.check()
    except ProvisionError as exc:
        return StepResult(step.name, Outcome.FAILED, str(exc))
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        return StepResult(
            step.name,
            Outcome.FAILED,
            f"{exc.strerror or exc}{where}: check the disk and the permissions, then run again",
        )
    if after.state is State.TODO:
        return StepResult(
            step.name,
            Outcome.FAILED,
            f"applied ({detail}), but the check still finds: {after.detail}. "
            "Something on this system undoes the change; look at it, then run again",
        )
    return StepResult(step.name, Outcome.CHANGED, detail)


def run_plan(steps: Sequence[Step], dry_run: bool) -> list[StepResult]:
    """Check (and unless ``dry_run`` apply) each step in order; stop applying after a failure.

    A dry run checks every step anyway: it applies nothing later steps could depend on, and
    the technician sees all the problems at once.
    """
    results: list[StepResult] = []
    for step in steps:
        if not dry_run and failed(results):
            results.append(
                StepResult(step.name, Outcome.NOT_RUN, "an earlier step failed: fix it, run again")
            )
            continue
        results.append(_run_step(step, dry_run))
    return results


def failed(results: Sequence[StepResult]) -> bool:
    return any(r.outcome is Outcome.FAILED for r in results)


def format_table(results: Sequence[StepResult]) -> str:
    width = max((len(r.name) for r in results), default=4)
    outcome_width = max(len(o.value) for o in Outcome)
    lines = [f"{'step':<{width}}  {'result':<{outcome_width}}  detail"]
    lines += [f"{r.name:<{width}}  {r.outcome.value:<{outcome_width}}  {r.detail}" for r in results]
    return "\n".join(lines)


def summary(results: Sequence[StepResult], dry_run: bool) -> str:
    """The report's last line; "nothing to change" exactly when no step changed or failed."""
    count = {o: sum(r.outcome is o for r in results) for o in Outcome}
    if dry_run:
        planned, failing = count[Outcome.PLANNED], count[Outcome.FAILED]
        head = f"{planned} step(s) would change" if planned else "nothing to change"
        head += f", {failing} would fail" if failing else ""
        return f"dry run: {head}; nothing was changed"
    if not count[Outcome.CHANGED] and not count[Outcome.FAILED]:
        return (
            f"nothing to change ({count[Outcome.UNCHANGED]} unchanged, "
            f"{count[Outcome.SKIPPED]} skipped)"
        )
    parts = [
        f"{count[o]} {o.value.lower()}"
        for o in (Outcome.CHANGED, Outcome.UNCHANGED, Outcome.SKIPPED, Outcome.FAILED)
    ]
    if count[Outcome.NOT_RUN]:
        parts.append(f"{count[Outcome.NOT_RUN]} not run")
    return ", ".join(parts)
