"""Delivering an outbox batch: send it, settle the answers, and isolate a poison event.

One bad event must not hold the outbox up forever (docs/kiosk-sync.md). The outbox
(kiosk/storage/outbox.py) owns the events and the alerts; :class:`BatchDelivery` only decides,
from what the server did with a batch, which events to settle and which to park.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import astuple, dataclass

from kiosk.errors import Rejected, Unreachable
from kiosk.ports import EventResult, OutboxEvent

__all__ = ["CONTENT_REFUSALS", "BatchDelivery", "Probe", "Send", "SettleReport"]

log = logging.getLogger(__name__)

# A refusal of a whole batch for what is in it: isolate the event at fault. Other refusals
# (401 bad token, 404 old server, 429) are about the kiosk, not an event: back off instead.
CONTENT_REFUSALS = frozenset({400, 413, 422})


@dataclass(frozen=True)
class SettleReport:
    """What `settle()` did with a batch of results."""

    applied: int = 0
    alerted: int = 0
    ignored: int = 0  # results for events not in the outbox (already settled, or foreign)
    unknown_status: int = 0  # statuses this kiosk does not know: the event stays pending

    @property
    def progress(self) -> bool:
        """True if at least one event left the outbox."""
        return self.applied + self.alerted > 0

    def __add__(self, other: SettleReport) -> SettleReport:
        return SettleReport(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


Send = Callable[[list[OutboxEvent]], list[EventResult]]
Probe = Callable[[], bool]
Settle = Callable[[Iterable[EventResult]], SettleReport]
Park = Callable[[str, str, object, object], bool]  # event_id, status, reason, message


class BatchDelivery:
    """Sends batches for an outbox: the answers go to ``settle`` (`Outbox.settle`), a poison
    event to ``park`` (`Outbox.park`). Each event's lone failures are remembered between
    cycles, in memory only."""

    def __init__(self, settle: Settle, park: Park) -> None:
        self._settle = settle
        self._park = park
        self._strikes: dict[str, int] = {}  # event_id -> lone failures

    def deliver(
        self,
        batch: Sequence[OutboxEvent],
        send: Send,
        *,
        probe: Probe,
        poison_strikes: int = 3,
    ) -> SettleReport:
        """Send `batch` with `send` and settle the answers, isolating a poison event.

        When the server refuses the whole batch for what is in it (HTTP 400/413/422), or fails
        on it (`Unreachable`: a 5xx, garbage) while `probe()` says it is up, the batch is split
        in halves until the event at fault is alone. Refused alone, it is parked at once as
        "rejected" with the server's message; failing alone, it is tried again next cycle
        (later events wait, keeping their order) and parked as "failed" after
        `poison_strikes` lone failures. Other errors, and `Unreachable` while `probe()` is
        False, propagate: the caller backs off.
        """
        return self._deliver(list(batch), send, probe, max(1, poison_strikes), probed=False)

    def _deliver(
        self, batch: list[OutboxEvent], send: Send, probe: Probe, strikes: int, *, probed: bool
    ) -> SettleReport:
        try:
            results = send(batch)
        except Rejected as exc:
            if exc.status not in CONTENT_REFUSALS:
                raise
            return self._isolate(batch, send, probe, strikes, exc)
        except Unreachable as exc:
            if not probed and not probe():  # down, not choking on this batch
                raise
            return self._isolate(batch, send, probe, strikes, exc)
        for event in batch:
            self._strikes.pop(event.event_id, None)
        return self._settle(results)

    def _isolate(
        self, batch: list[OutboxEvent], send: Send, probe: Probe, strikes: int, exc: Exception
    ) -> SettleReport:
        if len(batch) > 1:
            mid = len(batch) // 2
            first = self._deliver(batch[:mid], send, probe, strikes, probed=True)
            second = self._deliver(batch[mid:], send, probe, strikes, probed=True)
            return first + second
        event = batch[0]
        if isinstance(exc, Rejected):
            status, reason = "rejected", exc.code
        else:
            tries = self._strikes.get(event.event_id, 0) + 1
            self._strikes[event.event_id] = tries
            if tries < strikes:
                log.warning(
                    "outbox: %s event %s failed on its own (%d of %d tries): %s",
                    event.kind,
                    event.event_id,
                    tries,
                    strikes,
                    exc,
                )
                raise exc
            status, reason = "failed", "server_error"
        self._strikes.pop(event.event_id, None)
        return SettleReport(alerted=int(self._park(event.event_id, status, reason, str(exc))))
