"""What the touch screen shows and what a tap does, without Kivy: the member session.

The app renders ``UiState`` snapshots and forwards taps here. Blocking work (identifying a
code, a transaction with its door wait or payment) runs through ``run`` (a worker thread in
the app) and every state change reaches the UI through ``post`` (``Clock.schedule_once`` in
the app), so camera, sync and transaction threads never touch a widget. Tests pass
synchronous ``run``/``post`` and drive the same object.

A tap that arrives while a transaction runs is ignored (``busy``): a touchscreen that
reports one touch twice can never start two transactions.

A member lookup has an end the member can see: ``lookup_left_s`` counts down from
``lookup_timeout_s`` (the store server client gives up within its read timeout), the member
may cancel it, and should it still run ``LOOKUP_GRACE_S`` after that, the session gives up
on it by itself; a late answer is then ignored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from kiosk.domain.catalog import Affordability, Catalog, ItemKind, affordable
from kiosk.domain.member_view import with_balance
from kiosk.domain.payloads import PayloadKind, classify_payload
from kiosk.domain.receipts import Bilingual
from kiosk.domain.wheel import Wheel
from kiosk.errors import KioskError
from kiosk.services.door_alarms import DoorAlarm
from kiosk.services.identify import Identified, IdentifyError, MemberIdentifier, NotAMemberCode
from kiosk.services.session_messages import (
    LOOKUP_CANCELLED,
    LOOKUP_TIMEOUT,
    NO_COMPARTMENT,
    NO_WHEEL,
    NOT_ENROLLED,
    fault_message,
)
from kiosk.services.transactions import RESCAN_CODES, ItemChoice, Member, TransactionEngine
from kiosk.services.txn_steps import Outcome, Progress, TransactionRefused, TxnResult
from kiosk.services.ui_state import Screen, UiState

log = logging.getLogger(__name__)

# outcomes after which the member's points are spent (or the spend is on its way to the server)
_CHARGED = (Outcome.DISPENSED, Outcome.ISSUED, Outcome.DISPENSED_UNCONFIRMED)
_RESCAN_REFUSALS = frozenset(f"refused:{code}" for code in RESCAN_CODES)
LOOKUP_GRACE_S = 3.0  # past the lookup's countdown before the session stops waiting for it


Post = Callable[[Callable[[], None]], None]
Run = Callable[[Callable[[], None]], None]


def _thread(fn: Callable[[], None]) -> None:
    threading.Thread(target=fn, name="kiosk-session-work", daemon=True).start()


class MemberSession:
    """The member-facing flow: scan -> member -> catalog -> confirm -> (payment) -> result."""

    def __init__(
        self,
        *,
        identifier: MemberIdentifier | None,
        engine: TransactionEngine,
        catalog: Callable[[], Catalog | None],
        online: Callable[[], bool],
        post: Post,
        run: Run = _thread,
        idle_logout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        wheel_info: Callable[[], Wheel | None] = lambda: None,
        member_wheel_info: Callable[[str, str], Wheel | None] | None = None,
        lookup_timeout_s: float = 10.0,
    ) -> None:
        self.identifier = identifier
        self.engine = engine
        self.catalog = catalog
        self.online = online
        self.post = post
        self.run = run
        self.idle_logout_s = idle_logout_s
        self.clock = clock
        self.wheel_info = wheel_info  # the synced wheel (segments, odds, rules, cost, proof)
        # the same asked for one member (id, member session): spins left
        self.member_wheel_info = member_wheel_info
        self.lookup_timeout_s = lookup_timeout_s  # the client's bound on a member lookup
        self.state = UiState()
        self._listeners: list[Callable[[UiState], None]] = []
        self._last_touch = clock()
        self._lock = threading.Lock()
        self._lookups = 0  # numbers each lookup, so a late answer is known as one
        self._lookup: int | None = None  # the lookup running now
        self._lookup_started = 0.0

    # ---- plumbing ------------------------------------------------------------------------
    def subscribe(self, listener: Callable[[UiState], None]) -> None:
        """``listener`` gets every new state, on the thread ``post`` delivers to."""
        self._listeners.append(listener)

    def _set(self, **changes) -> None:
        with self._lock:
            self.state = replace(self.state, seq=self.state.seq + 1, **changes)
            snapshot = self.state
        self.post(lambda: self._tell(snapshot))

    def _lookup_change(self, lookup: int | None, *, end: bool, **changes) -> bool:
        """Change the state for the running lookup (``lookup`` None: whichever runs) and,
        with ``end``, finish it; False (nothing changed) when that lookup is over."""
        with self._lock:
            if self._lookup is None or lookup not in (None, self._lookup):
                return False
            if end:
                self._lookup = None
                changes.update(busy=False, lookup_left_s=None)
            self.state = replace(self.state, seq=self.state.seq + 1, **changes)
            snapshot = self.state
        self.post(lambda: self._tell(snapshot))
        return True

    def _tell(self, snapshot: UiState) -> None:
        for listener in list(self._listeners):
            listener(snapshot)

    def touch(self) -> None:
        """Any tap: the idle countdown starts again."""
        self._last_touch = self.clock()

    # ---- scanning --------------------------------------------------------------------------
    def on_scan(self, payload: str) -> None:
        """A decoded QR code (from the camera thread)."""
        screen = self.state.screen
        if self.state.busy or screen not in (Screen.ATTRACT, Screen.MEMBER, Screen.MAINTENANCE):
            return
        kind = classify_payload(payload)
        if screen is Screen.MAINTENANCE and kind is PayloadKind.MEMBER:
            return  # out of service: only staff and technicians get through
        if kind in (PayloadKind.STAFF, PayloadKind.TECHNICIAN):
            screen = Screen.STAFF if kind is PayloadKind.STAFF else Screen.DIAGNOSTICS
            self._set(screen=screen, routed_code=(kind, payload), error=None)
            return
        if self.identifier is None:
            self._set(error=NOT_ENROLLED)
            return
        self.touch()
        with self._lock:
            self._lookups += 1
            lookup = self._lookup = self._lookups
            self._lookup_started = self.clock()
        self._set(busy=True, error=None, lookup_left_s=self.lookup_timeout_s)
        self.run(lambda: self._identify(payload, lookup))

    def _identify(self, payload: str, lookup: int) -> None:
        try:
            who = self.identifier.identify(payload)  # type: ignore[union-attr]
        except NotAMemberCode as exc:
            screen = Screen.STAFF if exc.kind is PayloadKind.STAFF else Screen.DIAGNOSTICS
            self._lookup_change(lookup, end=True, screen=screen, routed_code=(exc.kind, payload))
            return
        except IdentifyError as exc:
            log.info("member code not accepted (%s): %s", exc.reason, exc)
            self._lookup_change(lookup, end=True, error=exc.message)
            return
        except KioskError as exc:
            self._lookup_change(lookup, end=True, error=fault_message(exc))
            return
        if not self._lookup_change(
            lookup, end=True, member=who, screen=Screen.MEMBER, offer=self._offer(who),
            online=self.online(), wheel=self.wheel_info(),
        ):  # fmt: skip
            log.warning("member %s identified after the lookup was given up: not shown",
                        who.view.member_id)  # fmt: skip
            return
        self.touch()

    def cancel_lookup(self) -> None:
        """The member tapped cancel while their code is looked up: back to scanning now; the
        answer, when it comes, is ignored."""
        if self._lookup_change(None, end=True, error=LOOKUP_CANCELLED):
            log.info("member lookup cancelled by the member")
            self.touch()

    def _offer(self, who: Identified) -> tuple[Affordability, ...]:
        catalog = self.catalog()
        if catalog is None:
            return ()
        online = self.online()
        return tuple(affordable(who.view, catalog.items, online=online))

    # ---- navigation ------------------------------------------------------------------------
    def show_catalog(self) -> None:
        if self._ready(Screen.MEMBER, Screen.CONFIRM, Screen.RESULT):
            self.touch()
            offer = self._offer(self.state.member) if self.state.member else ()
            self._set(screen=Screen.CATALOG, offer=offer, selected=None, error=None)

    def choose(self, sku: str) -> None:
        if not self._ready(Screen.CATALOG):
            return
        self.touch()
        pick = next((a for a in self.state.offer if a.item.sku == sku), None)
        if pick is None or not pick.ok:
            return  # disabled items show their reason; a tap does nothing
        compartment = self._compartment(pick)
        if pick.item.kind is ItemKind.GIFT and compartment is None:
            self._set(error=NO_COMPARTMENT)
            return
        self._set(screen=Screen.CONFIRM, selected=pick, compartment=compartment, error=None)

    def _compartment(self, pick: Affordability) -> int | None:
        if pick.item.kind is not ItemKind.GIFT:
            return None
        flagged = self.engine.flags.flagged()
        return next(
            (n for n, stock in pick.item.compartments if stock > 0 and n not in flagged), None
        )

    def back(self) -> None:
        if self.state.busy:
            return
        self.touch()
        previous = {
            Screen.CATALOG: Screen.MEMBER,
            Screen.CONFIRM: Screen.CATALOG,
            Screen.WHEEL: Screen.MEMBER,
            Screen.RESULT: Screen.MEMBER,
        }.get(self.state.screen, Screen.ATTRACT)
        if previous is Screen.ATTRACT:
            self.logout()
        else:
            self._set(screen=previous, error=None, result=None, progress=None)

    def show_wheel(self) -> None:
        if self._ready(Screen.MEMBER, Screen.RESULT):
            self.touch()
            synced = self.wheel_info()
            self._set(screen=Screen.WHEEL, wheel=synced, error=None, result=None)
            who = self.state.member
            if (
                self.member_wheel_info and who is not None and who.session is not None
                and synced is not None
            ):  # fmt: skip
                self.run(lambda: self._spins_left(who, synced))

    def _spins_left(self, who: Identified, synced: Wheel) -> None:
        """Ask the server how many spins this member has left today (a worker). The answer
        is shown only if nothing moved on meanwhile; without one the screen keeps the synced
        wheel (it says "spins left" only when it knows)."""
        try:
            info = self.member_wheel_info(who.view.member_id, who.session)  # type: ignore[misc]
        except KioskError as exc:
            log.warning("spins left for the member unknown: %s", exc)
            return
        state = self.state
        if (
            isinstance(info, Wheel) and state.screen is Screen.WHEEL and not state.busy
            and state.member is who and state.wheel is synced and state.result is None
        ):  # fmt: skip
            self._set(wheel=info)

    def logout(self) -> None:
        if self.state.busy:
            return
        self._set(
            screen=Screen.MAINTENANCE if self.state.maintenance else Screen.ATTRACT, member=None, offer=(), selected=None, compartment=None,
            progress=None, result=None, error=None, idle_left_s=None, routed_code=None,
        )  # fmt: skip

    def set_maintenance(self, reason: Bilingual | None) -> None:
        """A device the kiosk needs is down (``reason``) or back (None)."""
        if reason == self.state.maintenance:
            return
        if reason is not None and not self.state.busy and self.state.screen in (
            Screen.ATTRACT, Screen.MAINTENANCE,
        ):  # fmt: skip
            self._set(maintenance=reason, screen=Screen.MAINTENANCE)
        elif reason is None and self.state.screen is Screen.MAINTENANCE:
            self._set(maintenance=None, screen=Screen.ATTRACT)
        else:  # a member is being served: the screen changes once they are done
            self._set(maintenance=reason)

    def set_alarms(self, alarms: tuple[DoorAlarm, ...]) -> None:
        """The active door alarms (kiosk/services/door_alarms.py ``subscribe``)."""
        if tuple(alarms) != self.state.alarms:
            self._set(alarms=tuple(alarms))

    def _ready(self, *screens: Screen) -> bool:
        return not self.state.busy and self.state.screen in screens

    # ---- transactions ----------------------------------------------------------------------
    def confirm(self) -> None:
        """The member confirmed: redeem (or buy) the selected item. A second tap is ignored."""
        if not self._ready(Screen.CONFIRM) or self.state.selected is None:
            return
        pick, who = self.state.selected, self.state.member
        item = pick.item
        choice = ItemChoice(
            item.sku, Bilingual(item.name_zh, item.name_en), item.points,
            cash_cents=item.cash_cents, compartment=self.state.compartment,
            coupon_value_cents=item.coupon_value_cents,
        )  # fmt: skip
        screen = Screen.PAYMENT if item.cash_cents else Screen.RESULT
        self._set(busy=True, screen=screen, progress=None, result=None, error=None)
        self.run(
            lambda: self._transact(lambda: self.engine.redeem(_member(who), choice, self._progress))
        )

    def spin(self) -> None:
        if not self._ready(Screen.WHEEL) or self.state.member is None:
            return
        wheel = self.wheel_info()  # the synced wheel: its cost and the commitments it holds
        if wheel is None:
            self._set(error=NO_WHEEL)
            return
        who = self.state.member
        self._set(busy=True, progress=None, result=None, error=None)
        self.run(
            lambda: self._transact(lambda: self.engine.spin(_member(who), wheel, self._progress))
        )

    def cancel_payment(self) -> None:
        if self.state.screen is Screen.PAYMENT:
            self.engine.cancel_payment()

    def _progress(self, progress: Progress) -> None:
        self._set(progress=progress)

    def _transact(self, call: Callable[[], TxnResult]) -> None:
        try:
            result = call()
        except TransactionRefused as exc:
            self._set(busy=False, error=exc.message, screen=self._back_from_refusal(exc.code))
            return
        except KioskError as exc:
            progress = self.state.progress
            self._set(busy=False, error=fault_message(exc, progress and progress.txn_id),
                      screen=Screen.RESULT)  # fmt: skip
            return
        self.touch()
        if result.outcome is Outcome.REFUSED and result.txn.void_reason in _RESCAN_REFUSALS:
            # the server wants the member's code scanned again (session over): the member
            # screen takes a scan
            self._set(busy=False, error=result.message, screen=Screen.MEMBER, progress=None)
            return
        screen = Screen.WHEEL if self.state.screen is Screen.WHEEL else Screen.RESULT
        who = self._after(self.state.member, result)
        offer = self._offer(who) if who is not None else self.state.offer
        self._set(busy=False, result=result, screen=screen, progress=None, member=who, offer=offer)

    def _after(self, who: Identified | None, result: TxnResult) -> Identified | None:
        """The member as the transaction left them: the balance the server captured at (or
        the offline spend), so the member screen and the catalog offer what is left."""
        if who is None or result.outcome not in _CHARGED:
            return who
        ctx = result.ctx
        balance = ctx.balance_final if ctx.balance_final is not None else ctx.balance_held
        if balance is None or balance == who.view.balance:
            return who
        view = with_balance(who.view, balance)
        if self.identifier is not None:
            self.identifier.remember(view)
        return replace(who, view=view)

    def _back_from_refusal(self, code: str = "") -> Screen:
        if code in RESCAN_CODES or code == "member_code_required":
            return Screen.MEMBER  # scan again: the member screen takes a scan
        return Screen.WHEEL if self.state.screen is Screen.WHEEL else Screen.CONFIRM

    # ---- time ------------------------------------------------------------------------------
    def tick(self) -> None:
        """Once a second from the UI: connectivity, the idle countdown, logout at zero."""
        online = self.online()
        if online != self.state.online:
            self._set(online=online)
        if self._lookup is not None:
            self._tick_lookup()
            return
        if self.state.screen in (Screen.ATTRACT, Screen.STAFF, Screen.DIAGNOSTICS,
                                 Screen.MAINTENANCE) or self.state.busy:  # fmt: skip
            if self.state.idle_left_s is not None:
                self._set(idle_left_s=None)
            return
        left = self.idle_logout_s - (self.clock() - self._last_touch)
        if left <= 0:
            self.logout()
        else:
            self._set(idle_left_s=left)

    def _tick_lookup(self) -> None:
        left = self.lookup_timeout_s - (self.clock() - self._lookup_started)
        if left > -LOOKUP_GRACE_S:
            self._lookup_change(None, end=False, lookup_left_s=max(0.0, left), idle_left_s=None)
        elif self._lookup_change(None, end=True, error=LOOKUP_TIMEOUT):
            log.error(
                "member lookup still running %.0f s after it began (the store server client "
                "should have given up within %.0f s): the member is back on the scan screen",
                self.lookup_timeout_s - left, self.lookup_timeout_s,
            )  # fmt: skip


def _member(who: Identified | None) -> Member:
    assert who is not None
    view = who.view
    return Member(
        view.member_id, view.name_masked, view.balance, session=who.session, code=who.code_text
    )
