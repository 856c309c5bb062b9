"""What the running kiosk is doing, in a tiny file others read: ``kiosk idle`` (and so
``kiosk-provision update``) asks it whether a restart now would cut someone off.

The app writes ``activity.json`` whenever the kind of activity changes (never on a countdown
tick): attract, member session, transaction (with its id), staff. It holds the kind, since
when, and the app's pid, so a file left by a process that is gone (a crash, a power cut) is
known as stale instead of "busy" for ever.

Where: ``$RUNTIME_DIRECTORY`` (systemd sets it from the unit's ``RuntimeDirectory=kiosk``:
``/run/kiosk``, a tmpfs, so the SD card never sees these writes), else the state folder.
The write is a temp file and a rename, without fsync: a reader sees the old or the new file,
whole; after a power cut the pid is gone anyway, so durability would buy nothing and cost the
SD card a flush per member session (docs/journal.md).
"""

from __future__ import annotations

import enum
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from kiosk.services.ui_state import Screen, UiState

log = logging.getLogger(__name__)

FILE_NAME = "activity.json"
DEFAULT_RUNTIME_DIR = Path("/run/kiosk")  # the unit's RuntimeDirectory=kiosk


class Activity(enum.Enum):
    ATTRACT = "attract"  # nobody at the kiosk (the maintenance screen counts as this too)
    MEMBER = "member session"
    TRANSACTION = "transaction"
    STAFF = "staff"  # staff or technician screens, a restock included

    @property
    def idle(self) -> bool:
        return self is Activity.ATTRACT


_STAFF_SCREENS = (Screen.STAFF, Screen.DIAGNOSTICS)
_IDLE_SCREENS = (Screen.ATTRACT, Screen.MAINTENANCE)
_TXN_SCREENS = (Screen.PAYMENT, Screen.WHEEL)  # waiting for a payment, a spin under way


@dataclass(frozen=True)
class ActivityRecord:
    """One line of what the app is doing; ``txn_id`` while a transaction runs."""

    activity: Activity
    since: float  # wall clock (epoch seconds)
    pid: int
    txn_id: str | None = None

    def to_json(self) -> str:
        data = {"activity": self.activity.value, "since": self.since, "pid": self.pid}
        if self.txn_id:
            data["txn_id"] = self.txn_id
        return json.dumps(data, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ActivityRecord:
        """ValueError when the text is not an activity record."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        try:
            return cls(
                Activity(data["activity"]), float(data["since"]), int(data["pid"]),
                data.get("txn_id") or None,
            )  # fmt: skip
        except (KeyError, TypeError) as exc:
            raise ValueError(f"missing or bad field: {exc}") from None


def classify(state: UiState) -> tuple[Activity, str | None]:
    """The activity a screen state stands for, and the running transaction's id."""
    if state.screen in _IDLE_SCREENS:
        return Activity.ATTRACT, None
    if state.screen in _STAFF_SCREENS:
        return Activity.STAFF, None
    if state.progress is not None:
        return Activity.TRANSACTION, state.progress.txn_id
    if state.screen in _TXN_SCREENS or (state.busy and state.screen is Screen.CONFIRM):
        return Activity.TRANSACTION, None
    return Activity.MEMBER, None


def activity_path(state_dir: Path, env: Mapping[str, str] | None = None) -> Path:
    """Where the running app keeps its activity file."""
    runtime = (os.environ if env is None else env).get("RUNTIME_DIRECTORY", "")
    folder = runtime.split(":")[0] if runtime else ""
    return (Path(folder) if folder else state_dir) / FILE_NAME


class ActivityFile:
    """Keeps ``path`` saying what the app does: ``show(state)`` for every screen state (the
    member session's listener), ``start()`` once serving, ``stop()`` on the way out."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        pid: int | None = None,
    ) -> None:
        self.path, self._clock = path, clock
        self._pid = os.getpid() if pid is None else pid
        self.current: ActivityRecord | None = None
        self.writes = 0  # files written: one per change of activity (tests, the bench)

    def start(self) -> None:
        self._set(Activity.ATTRACT, None)

    def show(self, state: UiState) -> None:
        self._set(*classify(state))

    def _set(self, activity: Activity, txn_id: str | None) -> None:
        now = self.current
        if now is not None and (now.activity, now.txn_id) == (activity, txn_id):
            return
        if now is not None and now.activity is activity and txn_id is None:
            return  # the same transaction: its id is known only while it runs
        self.current = ActivityRecord(activity, self._clock(), self._pid, txn_id)
        self._write(self.current.to_json())

    def _write(self, text: str) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, self.path)
            self.writes += 1
        except OSError as exc:  # never the UI's problem: `kiosk idle` then sees no activity
            log.warning("cannot write the activity file %s: %s", self.path, exc)

    def stop(self) -> None:
        """The app is leaving: no activity any more (a crash leaves the file, now stale)."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot remove the activity file %s: %s", self.path, exc)
        self.current = None
