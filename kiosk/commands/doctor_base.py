"""The pieces every ``kiosk doctor`` check is made of: a finding (``Check``) at a ``Level``,
and the command runner (systemctl, journalctl) that tests replace."""

from __future__ import annotations

import enum
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple


class CommandResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


Runner = Callable[[Sequence[str]], CommandResult]


def run_command(argv: Sequence[str], timeout_s: float = 20.0) -> CommandResult:
    """Run ``argv``; a missing program is 127 and a hang is 124, never an exception."""
    env = {**os.environ, "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout_s, env=env, check=False
        )
    except FileNotFoundError:
        return CommandResult(127, "", f"{argv[0]}: command not found")
    except subprocess.TimeoutExpired:
        return CommandResult(124, "", f"{argv[0]} did not answer within {timeout_s:.0f} s")
    except OSError as exc:
        return CommandResult(126, "", f"{argv[0]}: {exc.strerror}")
    return CommandResult(done.returncode, done.stdout, done.stderr)


def last_line(r: CommandResult) -> str:
    """The last thing a command said (its error, usually), for a detail."""
    return ((r.stderr or r.stdout).strip().splitlines() or [f"exit status {r.returncode}"])[-1]


class Level(enum.Enum):
    OK = "ok"
    INFO = "info"  # not checked here, or nothing to judge: not a problem
    WARN = "WARN"  # works now, will not for long
    FAIL = "FAIL"

    def __call__(self, name: str, detail: str, fix: str = "") -> Check:
        """``Level.WARN("disk space", detail, fix)``: a Check at this level."""
        return Check(name, self, detail, fix)


@dataclass(frozen=True)
class Check:
    """One finding; ``fix`` says what to do when it is a problem (``not ok``)."""

    name: str
    level: Level
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.level in (Level.OK, Level.INFO)


ok, info, warn, fail = Level.OK, Level.INFO, Level.WARN, Level.FAIL
