"""Restock: staff open compartments one at a time, count each once its door is shut, and leave
with a printed slip. docs/restock.md has the rules and their reasons; in short:

- A session holds the kiosk-wide lock (``KioskLock``) from ``start()`` to its end: no member can
  redeem from a compartment staff have open, and no restock starts mid-transaction.
- One door at a time; the open intent is journalled (table ``restock``) before the pulse, so a
  crash leaves a record ``RestockService.report_unfinished()`` reports at start-up
  (``RestockService``: kiosk/services/restock_service.py).
- A count is accepted only while the door reads closed: journal, outbox ("inventory", event id
  ``<session>:<compartment>:<n>``), local stock view, then the needs-check flag is cleared.
- An idle session ends (``tick()``) only once its door is shut. No store server calls here:
  offline, the outbox holds the events.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from kiosk.domain.catalog import ItemKind
from kiosk.domain.receipts import Bilingual, RestockLine, RestockSlip
from kiosk.errors import LockerError, UserFacingError
from kiosk.i18n import bilingual
from kiosk.ports import AlreadyOpen, DoorJammed, DoorState
from kiosk.services.receipt_queue import ReprintResult
from kiosk.services.staff_auth import StaffSession
from kiosk.storage import tables

if TYPE_CHECKING:
    from kiosk.services.restock_service import RestockService

log = logging.getLogger(__name__)

SESSION_TABLE = tables.RESTOCK
COUNT_TABLE = tables.RESTOCK_COUNTS
MAX_COUNT = 10_000  # the store server refuses an inventory count above this


class RestockError(UserFacingError):
    """A refused restock step: a stable ``code``; ``key`` and ``fields`` name its text for staff."""

    def __init__(self, code: str, key: str, detail: str = "", **fields: Any) -> None:
        super().__init__(key, detail, **fields)
        self.code = code


_REFUSALS = {  # name: (code, text in kiosk/locale/restock.toml); staff read both languages
    "session_open": ("session_open", "restock.refused.session_open"),
    "busy": ("busy", "restock.refused.busy"),
    "open_one": ("door_open", "restock.refused.open_one"),
    "count_open": ("door_open", "restock.refused.count_open"),
    "finish_open": ("door_open", "restock.refused.finish_open"),
    "unknown": ("unknown_compartment", "restock.refused.unknown_compartment"),
    "locker": ("locker", "restock.refused.locker"),
    "jammed": ("jammed", "restock.refused.jammed"),
    "not_opened": ("not_opened", "restock.refused.not_opened"),
    "bad_count": ("bad_count", "restock.refused.bad_count"),
    "unknown_sku": ("unknown_sku", "restock.refused.unknown_sku"),
    "expired": ("expired", "restock.refused.expired"),
    "ended": ("ended", "restock.refused.ended"),
}


def _refused(name: str, detail: str = "", **values: Any) -> RestockError:
    code, key = _REFUSALS[name]
    return RestockError(code, key, detail, **values)


@dataclass(frozen=True)
class CompartmentStock:
    """What the kiosk believes a compartment holds: the catalog, then this kiosk's counts."""

    sku: str | None
    count: int


@dataclass(frozen=True)
class OpenedCompartment:
    number: int
    stock: CompartmentStock
    needs_check: bool
    was_open: bool  # the door read open before the pulse: nothing was pulsed


@dataclass(frozen=True)
class CountAccepted:
    number: int
    sku: str | None
    before: int  # before this session touched the compartment
    after: int
    event_id: str
    flag_cleared: bool


@dataclass(frozen=True)
class RestockSummary:
    session_id: str
    staff_id: str
    ended: str  # "finished" or "timeout"
    lines: tuple[RestockLine, ...]
    slip_printed: bool
    slip_queued: bool
    reprinted: int
    left: int  # receipts still waiting for the printer
    alerts: tuple[Bilingual, ...]  # for staff to read before walking away


@dataclass(frozen=True)
class UnfinishedRestock:
    """A session a crash interrupted, as the journal holds it."""

    session_id: str
    staff_id: str
    staff_name: str
    state: str  # "active", or "finishing" (its slip may be printed or queued)
    compartment: int | None  # the last compartment opened
    door: str | None  # "opening" (journalled, maybe pulsed), "opened", "jammed", "counted"
    counts: tuple[tuple[int, str | None, int], ...]  # (compartment, sku, count), in order


class RestockSession:
    """One staff member's restock (from ``RestockService.start``). Blocking calls (open, wait)
    belong on a worker thread; ``tick()`` may run from the UI timer meanwhile."""

    def __init__(self, service: RestockService, staff: StaffSession, session_id: str) -> None:
        self._svc, self.staff, self.session_id = service, staff, session_id
        self._lock = threading.RLock()
        self.summary: RestockSummary | None = None  # set once the session ended
        self._state, self._current, self._door = "active", None, None
        self._opened: set[int] = set()
        self._jams: list[int] = []
        self._lines: dict[int, tuple[int, str | None, int]] = {}  # number -> before, sku, after
        self._n: dict[int, int] = {}
        self._started_at, self._last = service.wall_clock(), service.clock()
        self._save()
        how = "online" if staff.online else "offline"
        log.info(
            "restock %s started by staff %s (%s, %s)", session_id, staff.staff_id, staff.name, how
        )

    def open_compartment(self, number: int) -> OpenedCompartment:
        """Journal the intent, pulse, wait for the sensor. RestockError ``door_open``,
        ``unknown_compartment``, ``locker`` or ``jammed`` (the session goes on)."""
        with self._lock:
            self._alive()
            if self._current is not None and self._reads_open(self._current):
                raise _refused("open_one", n=self._current)
            svc, who = self._svc, self.staff.staff_id
            try:
                svc.locker.door_state(number)
            except LockerError as exc:
                raise _refused("unknown", str(exc), n=number) from None
            self._current, self._door = number, "opening"
            self._save()  # durable before the pulse
            try:
                result = svc.locker.open(number)
            except LockerError as exc:
                self._door = "failed"
                self._save()
                raise _refused("locker", str(exc), n=number) from exc
            finally:
                self._touch()
            if isinstance(result, DoorJammed):
                self._jammed(number, result.waited_s)
            self._door = "opened"
            self._save()
            self._opened.add(number)
            log.info("restock %s: staff %s opened compartment %d", self.session_id, who, number)
            flagged = number in svc.flags.flagged()
            return OpenedCompartment(
                number, svc.stock_of(number), flagged, isinstance(result, AlreadyOpen)
            )

    def opens(self, number: int) -> bool:
        """Whether staff opened (or are opening, or tried to open: a jammed door they then
        pull open) compartment ``number`` in this session."""
        return number == self._current or number in self._opened

    def wait_closed(self, timeout_s: float | None = None) -> bool:
        """Poll the open compartment's door until it reads closed; False after ``timeout_s``.
        A door held open keeps the session alive."""
        svc, number = self._svc, self._current
        polls = None if timeout_s is None else max(1, round(timeout_s / svc.poll_s))
        while number is not None and self._reads_open(number):
            self._touch()
            if polls is not None:
                if polls == 0:
                    return False
                polls -= 1
            svc.sleep(svc.poll_s)
        self._touch()
        return True

    def enter_count(self, number: int, sku: str | None, count: int) -> CountAccepted:
        """What compartment ``number`` holds now (``sku`` None: emptied, count 0); accepted only
        for a compartment opened in this session whose door reads closed."""
        with self._lock:
            self._alive()
            self._check(number, sku, count)
            if self._reads_open(number):
                raise _refused("count_open", n=number)
            svc, who = self._svc, self.staff.staff_id
            before = self._lines.get(number, (svc.stock_of(number).count,))[0]
            n = self._n.get(number, 0) + 1
            event_id = f"{self.session_id}:{number}:{n}"
            flag = svc.flags.flagged().get(number)
            record = {"session": self.session_id, "compartment": number, "sku": sku}
            record |= {"count": count, "before": before, "at": svc.wall_clock()}
            record["flag_txn"] = flag.get("txn_id") if flag else None
            record["stamp"] = svc.stamp(number).payload()
            svc.journal.put(COUNT_TABLE, event_id, record)
            self._n[number], self._lines[number] = n, (before, sku, count)
            payload = {"compartment": number, "sku": sku, "count": count, **record["stamp"]}
            svc.outbox.add("inventory", payload, event_id=event_id)
            svc._counted(number, CompartmentStock(sku, count))
            cleared = flag is not None and svc.flags.clear(number, who)
            if number == self._current:
                self._door = "counted"
                self._save()
            self._touch()
            log.info(
                "restock %s: staff %s counted compartment %d: %s %d -> %d%s",
                *(self.session_id, who, number, sku, before, count),
                " (needs-check cleared)" if cleared else "",
            )
            return CountAccepted(number, sku, before, count, event_id, cleared)

    def reprint_receipts(self) -> ReprintResult:
        """Staff loaded paper: print every queued receipt now."""
        with self._lock:
            self._alive()
            self._touch()
            return self._svc.receipts.reprint_all()

    def tick(self) -> RestockSummary | None:
        """Call now and then (the UI timer): ends an idle session whose door is shut. Never
        blocks: while another step runs (a pulse), the session is not idle anyway."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if self.summary is None and self._idle():
                return self._end("timeout")
            return self.summary
        finally:
            self._lock.release()

    def finish(self) -> RestockSummary:
        """Print the slip (queued if it cannot print), reprint queued receipts, end."""
        with self._lock:
            if self.summary is not None:
                return self.summary
            if self._current is not None and self._reads_open(self._current):
                raise _refused("finish_open", n=self._current)
            return self._end("finished")

    # ---- internals -------------------------------------------------------------------------------
    def _alive(self) -> None:
        if self.summary is None and self._idle():
            self._end("timeout")
            raise _refused("expired", idle=self._svc.idle_timeout_s)
        if self.summary is not None:
            raise _refused("ended")

    def _idle(self) -> bool:
        if self._svc.clock() - self._last < self._svc.idle_timeout_s:
            return False
        if self._current is not None and self._reads_open(self._current):
            self._touch()  # staff are filling it: never time out with a door open
            return False
        return True

    def _touch(self) -> None:
        self._last = self._svc.clock()

    def _reads_open(self, number: int) -> bool:
        try:
            return self._svc.locker.door_state(number) is DoorState.OPEN
        except LockerError as exc:  # unreadable: assume the worst
            log.error("restock %s: door %d taken as open: %s", self.session_id, number, exc)
            return True

    def _check(self, number: int, sku: str | None, count: int) -> None:
        if number not in self._opened:
            raise _refused("not_opened", n=number)
        if type(count) is not int or not 0 <= count <= MAX_COUNT or (sku is None and count):
            raise _refused("bad_count", f"count {count!r} for {sku!r}", max=MAX_COUNT)
        items = self._svc.items
        item = None if items is None or sku is None else items.get(sku)
        if sku is not None and items is not None and (item is None or item.kind != ItemKind.GIFT):
            raise _refused("unknown_sku", sku=sku)

    def _jammed(self, number: int, waited_s: float) -> NoReturn:
        self._door = "jammed"
        self._save()
        self._jams.append(number)
        fault = {"what": "restock_door_jammed", "compartment": number, "session": self.session_id}
        event_id = f"{self.session_id}:{number}:jam{len(self._jams)}"
        self._svc.outbox.add("fault", fault | {"staff_id": self.staff.staff_id}, event_id=event_id)
        log.warning(
            "restock %s: staff %s: compartment %d did not open within %.1f s",
            *(self.session_id, self.staff.staff_id, number, waited_s),
        )
        raise _refused("jammed", f"no door-open signal {waited_s:.1f} s after the pulse", n=number)

    def _save(self) -> None:
        record = {"staff_id": self.staff.staff_id, "staff_name": self.staff.name}
        record |= {"state": self._state, "started_at": self._started_at}
        record |= {"compartment": self._current, "door": self._door}
        self._svc.journal.put(SESSION_TABLE, self.session_id, record)

    def _end(self, how: str) -> RestockSummary:
        svc, st = self._svc, self._svc.store
        try:
            self._state = "finishing"
            self._save()
            lines = tuple(
                RestockLine(n, self._name(sku), before, after)
                for n, (before, sku, after) in sorted(self._lines.items())
            )
            printed = False
            if lines:
                slip = RestockSlip(
                    store_name_zh=st.name_zh,
                    store_name_en=st.name_en,
                    kiosk_id=st.kiosk_id,
                    printed_at=dt.datetime.fromtimestamp(svc.wall_clock(), st.tz),
                    staff_id=self.staff.staff_id,
                    lines=lines,
                )
                printed = svc.receipts.print_or_queue(f"restock:{self.session_id}", slip)
            if printed or not lines:
                rep = svc.receipts.reprint_all()
            else:  # the printer just failed: the queue would fail the same way now
                rep = ReprintResult(0, len(svc.receipts), "the restock slip did not print")
            alerts = self._alerts(rep)
            for key in svc.counts_of(self.session_id):
                svc.journal.delete(COUNT_TABLE, key)
            svc.journal.delete(SESSION_TABLE, self.session_id)
        except BaseException:  # the journal failed: its record stays for start-up to report
            sid, who = self.session_id, self.staff.staff_id
            self.summary = RestockSummary(sid, who, how, (), False, False, 0, 0, ())
            raise
        finally:
            svc._ended(self)
        queued = bool(lines) and not printed
        self.summary = RestockSummary(
            *(self.session_id, self.staff.staff_id, how, lines, printed, queued),
            *(rep.printed, rep.left, alerts),
        )
        log.info(
            "restock %s by staff %s (%s) %s: %d compartment(s), slip %s, %d reprinted, %d left",
            *(self.session_id, self.staff.staff_id, self.staff.name, how, len(lines)),
            "printed" if printed else "queued" if queued else "none",
            *(rep.printed, rep.left),
        )
        return self.summary

    def _name(self, sku: str | None) -> Bilingual | None:
        item = None if self._svc.items is None or sku is None else self._svc.items.get(sku)
        if item is not None:
            return Bilingual(item.name_zh, item.name_en)
        return None if sku is None else Bilingual(sku, sku)

    def _alerts(self, rep: ReprintResult) -> tuple[Bilingual, ...]:
        numbers = (
            set(self._jams) - self._opened,
            self._opened - set(self._lines),
            set(self._svc.flags.flagged()),
        )
        out = [
            bilingual(f"restock.alert.{kind}", n=n)
            for group, kind in zip(numbers, _ALERTS, strict=True)
            for n in sorted(group)
        ]
        if rep.left:
            out.append(
                bilingual("restock.alert.receipts_waiting", left=rep.left, detail=rep.error or "-")
            )
        return tuple(out)


# kiosk/locale/restock.toml: jammed, opened but not counted, still flagged "needs check"
_ALERTS = ("jammed", "not_counted", "needs_check")
