"""The outbox: events the kiosk owes the store server, kept in the journal until it answers.

The transaction engine, restock and the door alarms (kiosk/services/door_alarms.py) `add()`
events (inventory counts, faults, door alarms, compartments that need a check, redemptions
made offline); the sync worker (kiosk/sync/worker.py) sends `pending()` events oldest first
and `settle()`s the results. An event the server refuses (`rejected`, or `conflict` for an offline redemption) leaves the
outbox for the "sync_alerts" table, where the staff and technician screens show it until
someone `acknowledge()`s it. Nothing is ever dropped without an answer or an alert.
`deliver()` sends a batch and isolates a poison event that makes the server refuse or fail on
a whole batch, so one bad event cannot hold up the rest (kiosk/storage/outbox_delivery.py,
docs/kiosk-sync.md).

Journal tables: "outbox" (key event_id) and "sync_alerts" (key = the event_id, so parking the
same event twice, e.g. after a crash between the two steps, stays one alert).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kiosk.errors import KioskError
from kiosk.ports import EventResult, OutboxEvent
from kiosk.storage import tables
from kiosk.storage.journal import Journal
from kiosk.storage.outbox_delivery import BatchDelivery, Probe, Send, SettleReport

__all__ = [
    "ALERT_STATUSES",
    "EVENT_KINDS",
    "MAX_PAYLOAD_BYTES",
    "STOCK_EVENT_KINDS",
    "WAKE_EVENT_KINDS",
    "Outbox",
    "OutboxError",
    "SettleReport",
    "SyncAlert",
]

log = logging.getLogger(__name__)

OUTBOX_TABLE = tables.OUTBOX
ALERTS_TABLE = tables.SYNC_ALERTS
# What the store server knows (storeserver/models.py KioskEvent.kind). An unknown kind would
# be refused by the server for the whole batch, so it is refused here, where the bug is.
EVENT_KINDS = frozenset({"inventory", "fault", "door_alarm", "needs_check", "offline_redemption"})
# Events that change what the server counts in a compartment: the sync worker sends them at
# once (kiosk/wiring.py wires it), since a hold meanwhile would take from the stock they replace.
STOCK_EVENT_KINDS = frozenset({"inventory", "offline_redemption"})
# Events the sync worker sends at once rather than on its next cycle: the stock events, and
# door alarms (staff away from the kiosk learn of a forced door from the server's alert).
WAKE_EVENT_KINDS = STOCK_EVENT_KINDS | {"door_alarm"}
# rejected/conflict: the server's verdict on the event. failed: the server kept failing on
# this one event (HTTP 5xx or garbage) while it answered everything else; see the worker.
ALERT_STATUSES = frozenset({"rejected", "conflict", "failed"})
# A journal record is at most 4096 bytes framed. An alert carries the whole event plus the
# server's reason and message (clipped below), so the payload gets about half of that.
MAX_PAYLOAD_BYTES = 2048
MAX_REASON_BYTES = 128
MAX_MESSAGE_BYTES = 1024
MAX_AT_CHARS = 40  # the server's KioskEvent.at limit


class OutboxError(KioskError):
    """An event cannot be queued as given (too big, not JSON, unknown kind)."""


@dataclass(frozen=True)
class SyncAlert:
    """An event the server refused or kept failing on, for the staff and technician screens."""

    alert_id: str  # the event's event_id
    event: OutboxEvent
    status: str  # rejected | conflict | failed
    reason: str | None  # the server's stable code, e.g. "price_changed"
    message: str | None  # the server's words, for staff
    at: str  # ISO 8601, when the kiosk parked it


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _json_bytes(value: Any) -> bytes:
    """The value as the journal stores it (compact UTF-8 JSON, no NaN); raises ValueError."""
    try:
        return json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode()
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(str(exc)) from None


def _clip(text: str | None, max_bytes: int) -> str | None:
    """`text` cut to at most `max_bytes` of UTF-8 (whole characters), marked with an ellipsis."""
    if text is None:
        return None
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates cannot be journalled
    if len(text.encode()) <= max_bytes:
        return text
    cut = text.encode()[: max_bytes - 3].decode("utf-8", "ignore")
    return cut + "..."


class Outbox:
    """Durable, ordered queue of `OutboxEvent`s on the journal; thread-safe.

    Events go out in the order they were added: each record holds a sequence number, one more
    than the highest held in the outbox or the alerts (so the order survives restarts; when
    both are empty the numbering may start again, since nothing older is left to order).
    """

    def __init__(
        self,
        journal: Journal,
        *,
        kinds: Iterable[str] = EVENT_KINDS,
        now: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self._journal = journal
        self._kinds = frozenset(kinds)
        self._now = now
        self._lock = threading.Lock()
        self._listeners: list[Callable[[OutboxEvent], object]] = []
        # event_id -> seq of the pending events; the journal holds the records themselves.
        self._seqs: dict[str, int] = {}
        self._delivery = BatchDelivery(self.settle, self.park)
        for event_id, record in journal.all(OUTBOX_TABLE).items():
            self._seqs[event_id] = _seq_of(record)
        highest = max(self._seqs.values(), default=0)
        for record in journal.all(ALERTS_TABLE).values():
            highest = max(highest, _seq_of(record))
        self._next_seq = highest + 1

    # --- queueing -----------------------------------------------------------------------------

    def on_queued(self, listener: Callable[[OutboxEvent], object]) -> None:
        """Call ``listener(event)`` after each new event is durable (on the adding thread;
        a failing listener is logged, never the adder's problem)."""
        self._listeners.append(listener)

    def add(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        at: dt.datetime | str | None = None,
        event_id: str | None = None,
    ) -> OutboxEvent:
        """Queue an event; it is durable when this returns. Raises OutboxError or JournalError.

        ``event_id`` makes the add idempotent (recovery re-adds what a crash may have added):
        an event still pending under that id is returned as it is, not queued twice. Once sent,
        the server applies an id only once anyway.
        """
        if kind not in self._kinds:
            raise OutboxError(
                f"outbox event kind {kind!r} is not one of {sorted(self._kinds)}: the store "
                "server would refuse it; fix the caller"
            )
        if not isinstance(payload, Mapping):
            raise OutboxError(f"outbox {kind} payload must be a dict, not {type(payload).__name__}")
        try:
            encoded = _json_bytes(dict(payload))
        except ValueError as exc:
            raise OutboxError(
                f"outbox {kind} payload is not plain JSON ({exc}): send str, int, finite float, "
                "bool, None, lists and dicts with str keys"
            ) from None
        size = len(encoded)
        if size > MAX_PAYLOAD_BYTES:
            raise OutboxError(
                f"outbox {kind} payload is {size} bytes, over the {MAX_PAYLOAD_BYTES}-byte "
                "limit: keep receipts, images and logs out of events and send a reference"
            )
        stamp = self._stamp(kind, at)
        if event_id is None:
            event_id = str(uuid.uuid4())
        elif not (0 < len(event_id) <= 100):
            raise OutboxError(f"outbox event id {event_id!r} must be 1-100 characters")
        clean = json.loads(encoded)  # what pending() will hand out (tuples become lists, ...)
        with self._lock:
            existing = self._journal.get(OUTBOX_TABLE, event_id)
            if existing is not None:
                return OutboxEvent(event_id, existing["kind"], existing["at"], existing["payload"])
            seq = self._next_seq
            record = {"seq": seq, "kind": kind, "at": stamp, "payload": clean}
            # Under the lock: a later seq is never durable before an earlier one, so the
            # worker cannot send event n+1 while event n is still being written.
            self._journal.put(OUTBOX_TABLE, event_id, record)
            self._seqs[event_id] = seq
            self._next_seq = seq + 1
        log.info("outbox: queued %s event %s (seq %d, %d bytes)", kind, event_id, seq, size)
        event = OutboxEvent(event_id, kind, stamp, clean)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("outbox listener failed on event %s", event_id)
        return event

    def _stamp(self, kind: str, at: dt.datetime | str | None) -> str:
        if at is None:
            at = self._now()
        if isinstance(at, dt.datetime):
            if at.tzinfo is None:
                raise OutboxError(
                    f"outbox {kind} event time {at} has no time zone: pass an aware datetime"
                )
            return at.astimezone(dt.UTC).isoformat(timespec="milliseconds")
        if isinstance(at, str) and 0 < len(at) <= MAX_AT_CHARS:
            try:
                dt.datetime.fromisoformat(at)
                return at
            except ValueError:
                pass
        raise OutboxError(
            f"outbox {kind} event time {at!r} is not an ISO 8601 time of at most "
            f"{MAX_AT_CHARS} characters: pass a datetime"
        )

    # --- sending ------------------------------------------------------------------------------

    def pending(self, limit: int = 50) -> list[OutboxEvent]:
        """Up to `limit` queued events, oldest first."""
        with self._lock:
            ids = sorted(self._seqs, key=self._seqs.__getitem__)[: max(0, limit)]
        events = []
        for event_id in ids:
            record = self._journal.get(OUTBOX_TABLE, event_id)
            if record is not None:  # settled by another thread meanwhile
                events.append(_event(event_id, record))
        return events

    def settle(self, results: Iterable[EventResult]) -> SettleReport:
        """Apply the server's answers: applied events leave, rejected and conflicting ones move
        to the alerts. An event without a result, or with a status this kiosk does not know,
        stays pending."""
        applied = alerted = ignored = unknown = 0
        for result in results:
            event_id = getattr(result, "event_id", None)
            status = getattr(result, "status", None)
            if not isinstance(event_id, str) or event_id not in self._seqs:
                ignored += 1
                log.debug("outbox: result for unknown event %r ignored", event_id)
            elif status == "applied":
                self._remove(event_id)
                applied += 1
                log.info("outbox: event %s applied by the store server", event_id)
            elif status in ("rejected", "conflict"):
                reason = getattr(result, "reason", None)
                if self.park(event_id, status, reason, getattr(result, "message", None)):
                    alerted += 1
            else:
                unknown += 1
                log.warning(
                    "outbox: store server answered status %r for event %s; it stays queued "
                    "(check that the kiosk and store server versions match)",
                    status,
                    event_id,
                )
        return SettleReport(applied, alerted, ignored, unknown)

    def deliver(
        self,
        batch: Sequence[OutboxEvent],
        send: Send,
        *,
        probe: Probe,
        poison_strikes: int = 3,
    ) -> SettleReport:
        """Send `batch` with `send` and settle the answers, isolating a poison event that makes
        the server refuse or fail on a whole batch (how: kiosk/storage/outbox_delivery.py).
        Other errors, and `Unreachable` while `probe()` is False, propagate: the caller backs
        off."""
        return self._delivery.deliver(batch, send, probe=probe, poison_strikes=poison_strikes)

    def park(self, event_id: str, status: str, reason: object, message: object) -> bool:
        """Move a pending event to the alerts with the server's verdict; False if not pending."""
        if status not in ALERT_STATUSES:
            raise OutboxError(f"alert status {status!r} is not one of {sorted(ALERT_STATUSES)}")
        with self._lock:
            record = self._journal.get(OUTBOX_TABLE, event_id)
            if record is None:
                self._seqs.pop(event_id, None)
                return False
            alert = {
                **record,
                "status": status,
                "reason": _clip(reason, MAX_REASON_BYTES) if isinstance(reason, str) else None,
                "message": _clip(message, MAX_MESSAGE_BYTES) if isinstance(message, str) else None,
                "parked_at": self._now().astimezone(dt.UTC).isoformat(timespec="seconds"),
            }
            # Alert first, then delete: a crash in between leaves the event queued too, and
            # sending it again parks it again under the same key.
            self._journal.put(ALERTS_TABLE, event_id, alert)
            self._journal.delete(OUTBOX_TABLE, event_id)
            self._seqs.pop(event_id, None)
        log.warning(
            "outbox: %s event %s parked in sync alerts: %s (%s)",
            record.get("kind"),
            event_id,
            status,
            alert["reason"] or alert["message"] or "no reason given",
        )
        return True

    def _remove(self, event_id: str) -> None:
        with self._lock:
            self._journal.delete(OUTBOX_TABLE, event_id)
            self._seqs.pop(event_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._seqs)

    # --- alerts -------------------------------------------------------------------------------

    def alerts(self) -> list[SyncAlert]:
        """Events waiting for staff, oldest event first."""
        rows = sorted(self._journal.all(ALERTS_TABLE).items(), key=lambda kv: _seq_of(kv[1]))
        return [
            SyncAlert(
                alert_id=event_id,
                event=_event(event_id, record),
                status=str(record.get("status")),
                reason=record.get("reason"),
                message=record.get("message"),
                at=str(record.get("parked_at", "")),
            )
            for event_id, record in rows
        ]

    def acknowledge(self, alert_id: str) -> bool:
        """Staff have dealt with an alert: remove it. False if there was none with this id."""
        removed = self._journal.delete(ALERTS_TABLE, alert_id)
        if removed:
            log.info("outbox: sync alert %s acknowledged", alert_id)
        return removed


def _seq_of(record: Mapping[str, Any]) -> int:
    seq = record.get("seq")
    return seq if type(seq) is int else 0


def _event(event_id: str, record: Mapping[str, Any]) -> OutboxEvent:
    payload = record.get("payload")
    return OutboxEvent(
        event_id,
        str(record.get("kind")),
        str(record.get("at")),
        payload if isinstance(payload, dict) else {},
    )
