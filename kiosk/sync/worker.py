"""The sync worker: one daemon thread that keeps the kiosk and the store server in step.

Each cycle it sends a heartbeat (every `heartbeat_s`, measuring clock skew, handing the
store's public keys to `on_keys` when they change (a key rotation) and passing on the store's
list of staff who may not sign in offline when it changed), drains the outbox
in batches while that makes progress, and re-reads the catalog and wheels (every `refresh_s`),
calling back only on change; the catalog's pictures are brought up to date at each read
(`fetch_pictures`, which never fails the cycle). Any failure - the server down, a refusal,
garbage, an exception in a callback - is logged and ends the cycle with an exponential,
jittered backoff; nothing ends the thread but `stop()`. docs/kiosk-sync.md ("Outbox and sync worker") has the long form.

Callbacks run on the worker thread. A Kivy UI must marshal them to its own thread
(`Clock.schedule_once` / `@mainthread`); the worker never touches widgets.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from kiosk.domain.staff import RevokedStaff
from kiosk.domain.wheel import Wheel
from kiosk.errors import KioskError, Rejected, StoreServerError, Unreachable
from kiosk.ports import EventResult, OutboxEvent, StoreServer
from kiosk.storage.outbox import Outbox
from kiosk.sync.heartbeat import Heartbeat, no_health, read_public_keys, revoked_staff
from kiosk.sync.parse import BadResponse
from kiosk.sync.records import SyncSettings, SyncStatus

__all__ = ["SyncError", "SyncSettings", "SyncStatus", "SyncWorker"]

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_RETRY_AFTER_S = 900.0  # a Retry-After is honoured up to this


class SyncError(KioskError):
    """A callback given to the sync worker failed, or a stopped thread is still busy."""


class SyncWorker:
    """Heartbeats, outbox upload and catalog/wheel refresh on a daemon thread.

    `clock` is wall time (skew, last_ok_at), `monotonic` schedules, `wait(event, timeout)`
    blocks until the event is set or the timeout passes (tests pass fakes for all three).
    Callbacks are called on the worker thread, and only on change (a UI must marshal them).
    """

    def __init__(
        self,
        server: StoreServer,
        outbox: Outbox,
        *,
        settings: SyncSettings | None = None,
        health_provider: Callable[[], Mapping[str, Any]] = no_health,
        on_catalog: Callable[[dict[str, Any]], None] | None = None,
        fetch_pictures: Callable[[dict[str, Any]], object] | None = None,
        on_wheel: Callable[[str, Wheel], None] | None = None,
        on_online_change: Callable[[bool], None] | None = None,
        on_cycle: Callable[[SyncStatus], None] | None = None,
        on_keys: Callable[[tuple[str, ...]], None] | None = None,
        on_revoked_staff: Callable[[RevokedStaff], None] | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        wait: Callable[[threading.Event, float], object] = threading.Event.wait,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings or SyncSettings()
        self._server = server
        self._outbox = outbox
        self._beat = Heartbeat(health_provider, outbox, on_provider_error=self._count_unexpected)
        self._on_catalog = on_catalog
        self._fetch_pictures = fetch_pictures
        self._on_wheel = on_wheel
        self._on_online_change = on_online_change
        self._on_cycle = on_cycle
        self._on_keys = on_keys
        self._keys: tuple[str, ...] | None = None  # the public keys last handed to on_keys
        self._on_revoked_staff = on_revoked_staff
        self._revoked_version: str | None = None
        self._clock = clock
        self._monotonic = monotonic
        self._wait = wait
        self._rng = rng or random.Random()
        self._lock = threading.Lock()  # guards the status fields below
        self._wakeup = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._online: bool | None = None
        self._last_ok_at: float | None = None
        self._last_error: str | None = None
        self._catalog_version: str | None = None
        self._wheels: dict[str, Wheel] = {}
        self._wheel_problems: dict[str, str] = {}
        self._failures = 0
        self._unexpected = 0
        self._next_attempt_at: float | None = None
        self._next_heartbeat = self._next_refresh = -math.inf
        self._forced = False
        self._retry_after: object = None

    # --- thread control -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread (no-op if running; again after `stop()`). SyncError if a stopped
        thread is still busy in a server call."""
        if self._thread is not None and self._thread.is_alive():
            if not self._stop.is_set():
                return
            raise SyncError(
                "the previous sync thread is still finishing a server call: wait for stop() "
                "to return True before starting it again"
            )
        self._stop = threading.Event()
        self._wakeup.clear()
        self._thread = threading.Thread(
            target=self._run, args=(self._stop,), name="kiosk-sync", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Ask the thread to end and wait up to `timeout`; True once it has ended."""
        self._stop.set()
        self._wakeup.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def wake(self, *, force: bool = False) -> None:
        """Run a cycle now (e.g. an event was queued). While backing off after failures this
        waits for the backoff to end, unless `force` (a technician's "retry now")."""
        if force:
            self._forced = True
        if force or self._failures == 0:
            self._wakeup.set()

    def status(self) -> SyncStatus:
        """Where syncing stands; cheap enough for a status bar."""
        running = self._thread is not None and self._thread.is_alive()
        with self._lock:
            next_in = None
            if running and self._next_attempt_at is not None:
                next_in = max(0.0, self._next_attempt_at - self._monotonic())
            return SyncStatus(
                online=bool(self._online),
                last_ok_at=self._last_ok_at,
                last_error=self._last_error,
                outbox_length=len(self._outbox),
                clock_skew_s=self._beat.skew,
                catalog_version=self._catalog_version,
                consecutive_failures=self._failures,
                next_attempt_in_s=next_in,
                alerts=len(self._outbox.alerts()),
                unexpected_errors=self._unexpected,
                running=running,
            )

    def _run(self, stop: threading.Event) -> None:
        log.info("sync worker started")
        while not stop.is_set():
            try:
                # A wake() that lands in between is served by the cycle that starts now.
                self._forced = False
                self._wakeup.clear()
                delay = self.run_once(stop)
                if self._failures and not self._forced:
                    self._wakeup.clear()  # a wake() during a failing cycle does not skip backoff
                deadline = self._monotonic() + delay
                while not stop.is_set() and not self._wakeup.is_set():
                    remaining = deadline - self._monotonic()
                    if remaining <= 0:
                        break
                    self._wait(self._wakeup, remaining)
            except Exception:  # last line of defence: only stop() ends the thread
                log.exception("sync worker loop failed; carrying on")
                self._count_unexpected()
                stop.wait(1.0)
        log.info("sync worker stopped")

    # --- one cycle ----------------------------------------------------------------------------

    def run_once(self, stop: threading.Event | None = None) -> float:
        """One cycle (heartbeat if due, drain, refresh if due) on the calling thread; never
        raises an Exception. Returns the seconds until the next cycle. For tests and tools:
        not while the thread runs."""
        stop = stop or threading.Event()
        try:
            self._cycle(stop)
        except StoreServerError as exc:
            self._failed(exc, online=False)
        except KioskError as exc:  # the journal, or a callback (already logged)
            self._failed(exc, online=None)
        except Exception as exc:  # a bug: keep syncing, but say where
            log.exception("sync cycle failed unexpectedly")
            self._failed(exc, online=None, unexpected=True)
        else:
            self._succeeded()
        now = self._monotonic()
        if self._failures:
            delay = self._backoff(self._failures)
            if isinstance(self._retry_after, int | float):  # the server said when (RetryLater)
                delay = max(delay, min(float(self._retry_after), MAX_RETRY_AFTER_S))
        else:
            delay = max(0.0, min(self._next_heartbeat, self._next_refresh) - now)
        with self._lock:
            self._next_attempt_at = now + delay
        if self._on_cycle is not None:
            try:
                self._on_cycle(self.status())
            except Exception:
                log.exception("sync on_cycle callback failed")
                self._count_unexpected()
        return delay

    def _cycle(self, stop: threading.Event) -> None:
        if self._monotonic() >= self._next_heartbeat:
            self._heartbeat()
        self._drain(stop)
        if self._monotonic() >= self._next_refresh and not stop.is_set():
            self._refresh()

    def _succeeded(self) -> None:
        with self._lock:
            self._failures = 0
            self._last_ok_at = self._clock()
            problems = sorted(self._wheel_problems.values())
            self._last_error = problems[0] if problems else None
        self._set_online(True)

    def _failed(self, exc: Exception, *, online: bool | None, unexpected: bool = False) -> None:
        text = str(exc) or type(exc).__name__
        self._retry_after = getattr(exc, "retry_after_s", None)
        with self._lock:
            self._failures += 1
            failures, repeated = self._failures, text == self._last_error
            self._last_error = text
            if unexpected:
                self._unexpected += 1
        # Everything is due again once the server is back: a reconnect refreshes at once.
        self._next_heartbeat = self._next_refresh = -math.inf
        level = logging.INFO if repeated and failures > 1 else logging.WARNING
        log.log(level, "sync failed (%d in a row): %s", failures, text)
        if online is not None:
            self._set_online(online)

    def _backoff(self, failures: int) -> float:
        s = self.settings
        d = min(s.backoff_cap_s, s.backoff_base_s * 2 ** min(failures - 1, 30))
        return d / 2 + self._rng.uniform(0, d / 2)

    def _set_online(self, online: bool) -> None:
        with self._lock:
            changed, self._online = self._online != online, online
        if not changed:
            return
        log.info("store server is %s", "reachable" if online else "unreachable")
        if self._on_online_change is not None:
            try:
                self._on_online_change(online)
            except Exception:
                log.exception("sync on_online_change callback failed")
                self._count_unexpected()

    def _count_unexpected(self) -> None:
        with self._lock:
            self._unexpected += 1

    def _call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """A server call; any exception but StoreServerError is an adapter bug, seen as Unreachable."""
        try:
            answer = fn(*args)
        except StoreServerError:
            raise
        except Exception as exc:
            log.exception("store server adapter raised on %s", what)
            self._count_unexpected()
            raise Unreachable(
                f"the store server adapter failed on {what} ({type(exc).__name__}: {exc}): "
                "a kiosk bug, see the log; retrying"
            ) from exc
        self._set_online(True)
        return answer

    def _callback(self, what: str, fn: Callable[..., None] | None, *args: Any) -> None:
        if fn is None:
            return
        try:
            fn(*args)
        except Exception as exc:
            log.exception("sync %s callback failed", what)
            self._count_unexpected()
            raise SyncError(f"the kiosk's {what} callback failed ({exc!r}): see the log") from exc

    # --- heartbeat (kiosk/sync/heartbeat.py) --------------------------------------------------

    def _heartbeat(self) -> None:
        health = self._beat.report(failures=self._failures)
        sent = self._clock()
        answer = self._call("heartbeat", self._server.heartbeat, health)
        self._beat.read_skew(answer, sent, self._clock(), self.settings.skew_warn_s)
        keys = read_public_keys(answer)
        if keys is not None and keys != self._keys:
            # Recorded only once the callback took them: a failed callback gets them again.
            self._callback("on_keys", self._on_keys, keys)
            self._keys = keys
        revoked = revoked_staff(answer)
        if revoked is not None and revoked.version != self._revoked_version:
            # recorded only once the callback took it: a failed callback gets it again
            self._callback("on_revoked_staff", self._on_revoked_staff, revoked)
            self._revoked_version = revoked.version
        self._next_heartbeat = self._monotonic() + self.settings.heartbeat_s

    # --- outbox -------------------------------------------------------------------------------

    def _drain(self, stop: threading.Event) -> None:
        while not stop.is_set():
            batch = self._outbox.pending(max(1, self.settings.batch_size))
            if not batch:
                return
            report = self._outbox.deliver(
                batch, self._send, probe=self._answers, poison_strikes=self.settings.poison_strikes
            )
            if report.applied or report.alerted:  # our own counts and offline spends
                self._next_refresh = -math.inf  # change the catalog (a conflict's too)
            if not report.progress:
                return

    def _send(self, batch: Sequence[OutboxEvent]) -> list[EventResult]:
        results = self._call("send_events", self._server.send_events, list(batch))
        if not isinstance(results, list) or not all(
            isinstance(r, EventResult) and isinstance(r.event_id, str) for r in results
        ):
            raise BadResponse(
                f"store server answered an event upload with {type(results).__name__} instead "
                "of event results: check the store server version"
            )
        return results

    def _answers(self) -> bool:
        try:
            self._call("health", self._server.health)
            return True
        except StoreServerError:
            return False

    # --- catalog and wheels -------------------------------------------------------------------

    def _refresh(self) -> None:
        catalog = self._call("catalog", self._server.catalog)
        version = catalog.get("version") if isinstance(catalog, dict) else None
        if not isinstance(version, str) or not version:
            raise BadResponse(
                f"store server answered the catalog request with {type(catalog).__name__} and "
                "no version: check the store server version"
            )
        if version != self._catalog_version:
            # Recorded only once the callback took it: a failed callback gets it again.
            self._callback("on_catalog", self._on_catalog, catalog)
            log.info("catalog version %s (was %s)", version, self._catalog_version)
            with self._lock:
                self._catalog_version = version
        self._pictures(catalog)
        for wheel_id in self.settings.wheel_ids:
            self._refresh_wheel(wheel_id)
        self._next_refresh = self._monotonic() + self.settings.refresh_s

    def _pictures(self, catalog: dict[str, Any]) -> None:
        """The catalog's pictures (kiosk/sync/pictures.py), at every poll: cheap when the
        cache is current. Pictures are decoration: whatever happens, the cycle goes on."""
        if self._fetch_pictures is None:
            return
        try:
            self._fetch_pictures(catalog)
        except Exception:
            log.exception("sync fetch_pictures failed")
            self._count_unexpected()

    def _refresh_wheel(self, wheel_id: str) -> None:
        try:
            info = self._call(f"wheel_info({wheel_id})", self._server.wheel_info, wheel_id)
        except Rejected as exc:
            if exc.status != 404:
                raise
            # A wheel the store does not run is a config problem, not an outage.
            text = (
                f"wheel {wheel_id} is not on the store server ({exc}): fix [wheel] id in the "
                "kiosk config"
            )
            if self._wheel_problems.get(wheel_id) != text:
                log.error("%s", text)
            self._wheel_problems[wheel_id] = text
            return
        if not isinstance(info, Wheel):
            raise BadResponse(
                f"store server answered wheel {wheel_id} with {type(info).__name__}: check "
                "the store server version"
            )
        self._wheel_problems.pop(wheel_id, None)
        if info != self._wheels.get(wheel_id):
            self._callback("on_wheel", self._on_wheel, wheel_id, info)
            log.info("wheel %s changed", wheel_id)
            self._wheels[wheel_id] = info
