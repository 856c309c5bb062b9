"""The sync worker's records: how often and how hard it talks to the store server
(``SyncSettings``), and what it reports (``SyncStatus``, for the status bar, the technician
screen and the heartbeat)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SyncSettings:
    """How often and how hard the worker talks to the store server."""

    heartbeat_s: float = 30.0
    refresh_s: float = 60.0  # catalog and wheel polls
    batch_size: int = 50
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    skew_warn_s: float = 30.0  # member codes are checked against the local clock
    poison_strikes: int = 3  # cycles one event may fail alone (5xx, garbage) before parking
    wheel_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class SyncStatus:
    """A snapshot for the status bar and the technician screen."""

    online: bool  # the server answered the last call (a refusal or garbage counts as no)
    last_ok_at: float | None  # clock() of the last fully successful cycle
    last_error: str | None  # what went wrong last, for a technician; None after a clean cycle
    outbox_length: int
    clock_skew_s: float | None  # server minus kiosk; positive: the kiosk clock is behind
    catalog_version: str | None
    consecutive_failures: int
    next_attempt_in_s: float | None  # None while the thread is not running
    alerts: int = 0  # events parked for staff (Outbox.alerts())
    unexpected_errors: int = 0  # non-KioskError exceptions caught (bugs: see the log)
    running: bool = False
