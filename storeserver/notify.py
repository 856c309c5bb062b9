"""Notifications to members when their points change (SMS/WeChat gateways plug in here)."""

from __future__ import annotations

import json
import logging
import queue
import threading
from dataclasses import asdict, dataclass, field
from typing import Protocol

import requests

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notification:
    """One event for one member: ``points_changed`` or ``tier_changed``."""

    kind: str
    member_id: str
    at: str
    data: dict = field(default_factory=dict)


class Notifier(Protocol):
    def send(self, notification: Notification) -> None:
        """Deliver or queue; must not block the request for long and must not raise."""
        ...


class LogNotifier:
    """Writes each notification to the log (the default)."""

    def send(self, notification: Notification) -> None:
        log.info("notify %s", json.dumps(asdict(notification), ensure_ascii=False))


class RecordingNotifier:
    """Keeps notifications in memory (tests, demo)."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []
        self._lock = threading.Lock()

    def send(self, notification: Notification) -> None:
        with self._lock:
            self.sent.append(notification)


class WebhookNotifier:
    """POSTs each notification as JSON to a URL from a background thread, with a bounded queue.

    A slow or dead webhook never slows a redemption: when the queue is full the
    notification is logged and dropped.
    """

    def __init__(self, url: str, timeout_s: float = 5.0, max_queue: int = 1000) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._queue: queue.Queue[Notification | None] = queue.Queue(max_queue)
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="webhook-notifier", daemon=True)
        self._thread.start()

    def send(self, notification: Notification) -> None:
        try:
            self._queue.put_nowait(notification)
        except queue.Full:
            log.warning("webhook queue full, dropped notification for %s", notification.member_id)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                resp = self._session.post(self.url, json=asdict(item), timeout=self.timeout_s)
                if resp.status_code >= 300:
                    log.warning("webhook %s answered %s", self.url, resp.status_code)
            except requests.RequestException as exc:
                log.warning("webhook %s failed: %s", self.url, exc)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=self.timeout_s + 1)
