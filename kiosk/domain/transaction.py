"""The redemption transaction as a pure state machine (ARCHITECTURE.md, "exactly once").

No I/O here: the engine journals ``to_record()`` and waits for ``put()`` before every
external effect; this module only says which step may follow which, and what start-up
recovery must do with a record a crash left behind.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace
from typing import Any

from kiosk.errors import JournalError, KioskError

RECORD_VERSION = 1
MAX_MEMBER_CODE = 256  # the server's bound on an uploaded member code


class TxnKind(enum.Enum):
    REDEEM = "redeem"  # points only: a locker gift or a coupon
    POINTS_CASH = "points_cash"  # points plus a cash part (never offline)
    SPIN = "spin"  # wheel spin; the prize is known only once the server holds (never offline)


class TxnState(enum.Enum):
    NEW = "NEW"
    HELD = "HELD"
    PAID = "PAID"
    DOOR_OPENING = "DOOR_OPENING"
    DISPENSED = "DISPENSED"
    CAPTURED = "CAPTURED"
    PRINTED = "PRINTED"
    DONE = "DONE"
    # The relay may have pulsed but the sensor never confirmed (DoorJammed, AlreadyOpen, or a
    # crash after DOOR_OPENING was journalled). Its own state, because the compartment must be
    # flagged for staff before voiding, and a second pulse could hand out a second gift.
    NEEDS_CHECK = "NEEDS_CHECK"
    VOIDING = "VOIDING"
    VOIDED = "VOIDED"


S = TxnState
TRANSITIONS: frozenset[tuple[TxnState, TxnState]] = frozenset(
    {
        (S.NEW, S.HELD),
        (S.HELD, S.PAID),  # only with a cash part
        (S.HELD, S.DOOR_OPENING),  # no cash part, a locker prize
        (S.HELD, S.CAPTURED),  # no cash part, no door (coupon or points prize)
        (S.PAID, S.DOOR_OPENING),
        (S.PAID, S.CAPTURED),  # paid, no door
        (S.DOOR_OPENING, S.DISPENSED),
        (S.DOOR_OPENING, S.NEEDS_CHECK),  # never straight to VOIDING: the flag must not be skipped
        (S.DISPENSED, S.CAPTURED),  # the gift is out: from here on there is no voiding
        (S.CAPTURED, S.PRINTED),
        (S.PRINTED, S.DONE),
        # NEW may void too: a hold call that timed out may have held on the server.
        (S.NEW, S.VOIDING),
        (S.HELD, S.VOIDING),
        (S.PAID, S.VOIDING),
        (S.NEEDS_CHECK, S.VOIDING),
        (S.VOIDING, S.VOIDED),
    }
)
TERMINAL = frozenset({S.DONE, S.VOIDED})

# Facts each step may record, beyond ``at``; anything else is a caller bug.
_FACTS: dict[TxnState, frozenset[str]] = {
    # sku/compartment: SPIN's prize; hold_seq: the server's order of holds (restock counts)
    S.HELD: frozenset({"hold_id", "sku", "compartment", "hold_seq"}),
    S.PAID: frozenset({"payment_ref"}),
    S.PRINTED: frozenset({"receipt_queued"}),
    S.NEEDS_CHECK: frozenset({"void_reason"}),
    S.VOIDING: frozenset({"void_reason"}),
}


class InvalidTransition(KioskError):
    """A step the transaction state machine does not allow (a bug in the engine)."""


class MalformedTransactionRecord(JournalError):
    """A journal record that is not a valid transaction: ``txn_id`` and ``field`` say where."""

    def __init__(self, txn_id: str, field_name: str, problem: str) -> None:
        super().__init__(
            f"journal record for transaction {txn_id!r}: field {field_name!r} {problem}; "
            "check this transaction against the store server by hand"
        )
        self.txn_id = txn_id
        self.field = field_name


@dataclass(frozen=True)
class Transaction:
    """One redemption, points+cash purchase or spin; ``txn_id`` is the server idempotency key."""

    txn_id: str
    kind: TxnKind
    member_id: str
    points: int
    cash_cents: int = 0
    sku: str | None = None
    compartment: int | None = None  # None: nothing to open (coupon, points prize)
    offline: bool = False
    state: TxnState = S.NEW
    history: tuple[tuple[TxnState, float], ...] = ()
    void_reason: str | None = None
    hold_id: str | None = None
    payment_ref: str | None = None
    receipt_queued: bool = False
    hold_seq: int | None = None
    # offline only: the signed member code verified at the scan, uploaded with the spend so the
    # server can check it (None in records journalled before kiosks kept it)
    member_code: str | None = None

    @property
    def needs_check(self) -> bool:
        """True once the door was pulsed without confirmation: staff must look."""
        return any(state is S.NEEDS_CHECK for state, _ in self.history)


def _kind_problem(t: Transaction) -> tuple[str, str] | None:
    """The first broken invariant as (field, problem), or None."""
    for name in ("points", "cash_cents"):
        value = getattr(t, name)
        if type(value) is not int or value < 0:
            return name, f"must be a whole number >= 0, got {value!r}"
    if t.compartment is not None and (type(t.compartment) is not int or t.compartment < 0):
        return "compartment", f"must be None or a whole number >= 0, got {t.compartment!r}"
    if t.kind is TxnKind.POINTS_CASH and t.cash_cents == 0:
        return "cash_cents", "must be > 0 for a points+cash purchase"
    if t.kind is not TxnKind.POINTS_CASH and t.cash_cents != 0:
        return "cash_cents", f"must be 0 for {t.kind.value}"
    if t.kind is TxnKind.REDEEM and t.points == 0:
        return "points", "must be > 0 for a redemption"
    if t.offline and t.kind is not TxnKind.REDEEM:
        return "offline", f"{t.kind.value} is never allowed offline"
    if t.member_code is not None and not (
        isinstance(t.member_code, str) and 0 < len(t.member_code) <= MAX_MEMBER_CODE
    ):
        return "member_code", f"must be null or a string of 1-{MAX_MEMBER_CODE} characters"
    return None


def new_transaction(
    txn_id: str,
    kind: TxnKind,
    member_id: str,
    *,
    points: int,
    at: float,
    cash_cents: int = 0,
    sku: str | None = None,
    compartment: int | None = None,
    offline: bool = False,
    member_code: str | None = None,
) -> Transaction:
    """A NEW transaction; ValueError if the kind's rules are broken (e.g. a spin offline)."""
    txn = Transaction(
        txn_id, kind, member_id, points, cash_cents, sku, compartment, offline,
        history=((S.NEW, at),), member_code=member_code,
    )  # fmt: skip
    problem = _kind_problem(txn)
    if problem:
        raise ValueError(f"transaction {txn_id}: {problem[0]} {problem[1]}")
    return txn


def _guard(txn: Transaction, new: TxnState, compartment: int | None) -> str | None:
    """Why an allowed pair is still wrong for this transaction's kind, or None."""
    old = txn.state
    if new is S.PAID and txn.cash_cents == 0:
        return "there is no cash part to pay"
    if old is S.HELD and new in (S.DOOR_OPENING, S.CAPTURED) and txn.cash_cents:
        return "the cash part is not paid yet"
    if new is S.DOOR_OPENING and compartment is None:
        return "there is no compartment to open"
    if old in (S.HELD, S.PAID) and new is S.CAPTURED and compartment is not None:
        return "the gift was never dispensed"
    return None


def advance(txn: Transaction, new_state: TxnState, *, at: float, **facts: Any) -> Transaction:
    """The transaction one step on, with ``facts`` recorded; InvalidTransition otherwise."""
    where = f"transaction {txn.txn_id} ({txn.kind.value})"
    if (txn.state, new_state) not in TRANSITIONS:
        raise InvalidTransition(f"{where}: {txn.state.name} -> {new_state.name} is not allowed")
    unknown = set(facts) - _FACTS.get(new_state, frozenset())
    if unknown:
        raise InvalidTransition(f"{where}: {new_state.name} takes no fact(s) {sorted(unknown)}")
    if ("sku" in facts or "compartment" in facts) and txn.kind is not TxnKind.SPIN:
        raise InvalidTransition(f"{where}: only a spin learns its prize at HELD")
    if new_state is S.VOIDING and not (facts.get("void_reason") or txn.void_reason):
        raise InvalidTransition(f"{where}: VOIDING needs a void_reason for the log and receipt")
    reason = _guard(txn, new_state, facts.get("compartment", txn.compartment))
    if reason:
        raise InvalidTransition(f"{where}: {txn.state.name} -> {new_state.name}: {reason}")
    return replace(txn, state=new_state, history=(*txn.history, (new_state, at)), **facts)


# ---- the wheel's rule ------------------------------------------------------------------------

GIFT_NOT_DISPENSED = "gift_not_dispensed"
COMMITMENT_MISMATCH = "commitment_mismatch"  # a draw the kiosk cannot prove: never shown
MAX_REASON = 200  # the server's VoidRequest.reason


def server_void_reason(txn: Transaction, reason: str) -> str:
    """The void reason the server is sent. The server voids a drawn spin only for a gift that
    was not dispensed, or one whose answer the kiosk cannot prove (docs/transactions.md, "The
    wheel's rule"), so a spin whose prize sits behind a door says so; every other void is sent
    as it is."""
    gift = txn.kind is TxnKind.SPIN and txn.compartment is not None
    if gift and not reason.startswith((GIFT_NOT_DISPENSED, COMMITMENT_MISMATCH)):
        reason = f"{GIFT_NOT_DISPENSED}: {reason}"
    return reason[:MAX_REASON]


# ---- journal records ------------------------------------------------------------------------


def to_record(txn: Transaction) -> dict[str, Any]:
    """A JSON-able dict for ``journal.put("txn", txn.txn_id, ...)``."""
    return {
        "v": RECORD_VERSION,
        "txn_id": txn.txn_id,
        "kind": txn.kind.value,
        "member_id": txn.member_id,
        "points": txn.points,
        "cash_cents": txn.cash_cents,
        "sku": txn.sku,
        "compartment": txn.compartment,
        "offline": txn.offline,
        "state": txn.state.value,
        "history": [[state.value, at] for state, at in txn.history],
        "void_reason": txn.void_reason,
        "hold_id": txn.hold_id,
        "payment_ref": txn.payment_ref,
        "receipt_queued": txn.receipt_queued,
        "hold_seq": txn.hold_seq,
        "member_code": txn.member_code,
    }


_OPT_STR = ("sku", "void_reason", "hold_id", "payment_ref")


def from_record(record: Any) -> Transaction:
    """The transaction in a journal record; MalformedTransactionRecord if anything is off."""
    txn_id = record.get("txn_id") if isinstance(record, dict) else None
    name = txn_id if isinstance(txn_id, str) else "<unknown>"

    def bad(field_name: str, problem: str) -> MalformedTransactionRecord:
        return MalformedTransactionRecord(name, field_name, problem)

    if not isinstance(record, dict):
        raise bad("<record>", f"must be a JSON object, got {type(record).__name__}")
    if record.get("v") != RECORD_VERSION:
        raise bad("v", f"must be {RECORD_VERSION}, got {record.get('v')!r}")
    for key in ("txn_id", "member_id"):
        if not isinstance(record.get(key), str) or not record[key]:
            raise bad(key, "must be a non-empty string")
    for key in _OPT_STR:
        if record.get(key) is not None and not isinstance(record[key], str):
            raise bad(key, "must be a string or null")
    seq = record.get("hold_seq")
    if seq is not None and (type(seq) is not int or seq < 0):
        raise bad("hold_seq", "must be a non-negative integer or null")
    for key in ("offline", "receipt_queued"):
        if not isinstance(record.get(key), bool):
            raise bad(key, "must be true or false")
    try:
        kind = TxnKind(record.get("kind"))
    except ValueError:
        raise bad("kind", f"unknown kind {record.get('kind')!r}") from None
    try:
        state = TxnState(record.get("state"))
    except ValueError:
        raise bad("state", f"unknown state {record.get('state')!r}") from None
    history = _history(record.get("history"), bad)
    if history[-1][0] is not state:
        raise bad("state", f"is {state.name} but history ends in {history[-1][0].name}")
    txn = Transaction(
        record["txn_id"], kind, record["member_id"], record.get("points"),
        record.get("cash_cents"), record.get("sku"), record.get("compartment"),
        record["offline"], state, history, record.get("void_reason"), record.get("hold_id"),
        record.get("payment_ref"), record["receipt_queued"], seq, record.get("member_code"),
    )  # fmt: skip
    problem = _kind_problem(txn)
    if problem:
        raise bad(*problem)
    return txn


def _history(raw: Any, bad: Any) -> tuple[tuple[TxnState, float], ...]:
    if not isinstance(raw, list) or not raw:
        raise bad("history", "must be a non-empty list of [state, time] pairs")
    steps: list[tuple[TxnState, float]] = []
    for i, step in enumerate(raw):
        if not (isinstance(step, list) and len(step) == 2):
            raise bad(f"history[{i}]", f"must be a [state, time] pair, got {step!r}")
        at = step[1]
        if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
            raise bad(f"history[{i}]", f"time must be a finite number, got {at!r}")
        try:
            state = TxnState(step[0])
        except ValueError:
            raise bad(f"history[{i}]", f"unknown state {step[0]!r}") from None
        steps.append((state, float(at)))
    if steps[0][0] is not S.NEW:
        raise bad("history[0]", "must start at NEW")
    for i in range(1, len(steps)):
        if (steps[i - 1][0], steps[i][0]) not in TRANSITIONS:
            pair = f"{steps[i - 1][0].name} -> {steps[i][0].name}"
            raise bad(f"history[{i}]", f"holds a step not allowed: {pair}")
    return tuple(steps)


# ---- crash recovery -------------------------------------------------------------------------


class Recovery(enum.Enum):
    """What start-up does with an unfinished transaction. There is deliberately no PULSE."""

    NOTHING = "nothing"  # terminal: compactable once synced
    VOID = "void"  # idempotent by txn_id: release the hold, refund/cancel the cash part
    # a spin the server may have drawn, with no gift door to fail: a drawn spin is final, so
    # ask the server and capture what it drew (void only what it never drew, or a gift)
    SETTLE_SPIN = "settle_spin"
    MARK_NEEDS_CHECK_AND_VOID = "mark_needs_check_and_void"
    CAPTURE = "capture"  # idempotent by txn_id
    REPRINT_OR_QUEUE = "reprint_or_queue"
    MARK_DONE = "mark_done"  # printed, only DONE was not journalled


@dataclass(frozen=True)
class RecoveryAction:
    """The recovery step for one transaction, with the reason for the log."""

    action: Recovery
    reason: str
    claim_voucher: bool = False  # print or queue a voucher the member can claim the gift with
    alert_staff: bool = False
    compartment: int | None = None  # the compartment to flag "needs check"


def recovery_action(txn: Transaction) -> RecoveryAction:
    """What to do at start-up with ``txn`` as the journal last saw it."""
    s, tid = txn.state, txn.txn_id
    if s in TERMINAL:
        return RecoveryAction(Recovery.NOTHING, f"{tid}: {s.name}, nothing to do")
    if txn.kind is TxnKind.SPIN and (s is S.NEW or (s is S.HELD and txn.compartment is None)):
        why = f"{tid}: spin at {s.name}: ask the server; a drawn spin is captured, never voided"
        return RecoveryAction(Recovery.SETTLE_SPIN, why)
    if s in (S.NEW, S.HELD, S.PAID):
        why = f"{tid}: crashed at {s.name} before any door opened: void the hold"
        return RecoveryAction(Recovery.VOID, why)
    if s in (S.DOOR_OPENING, S.NEEDS_CHECK):
        why = (
            f"{tid}: compartment {txn.compartment} may have been pulsed without confirmation; "
            "never pulse again (a second gift could drop): flag it, void, claim voucher"
        )
        return RecoveryAction(Recovery.MARK_NEEDS_CHECK_AND_VOID, why, True, True, txn.compartment)
    if s is S.VOIDING:
        why = f"{tid}: void was under way: void again (idempotent)"
        if txn.needs_check:
            return RecoveryAction(Recovery.VOID, why, True, True, txn.compartment)
        return RecoveryAction(Recovery.VOID, why)
    if s is S.DISPENSED:
        return RecoveryAction(Recovery.CAPTURE, f"{tid}: gift dispensed, capture (idempotent)")
    if s is S.CAPTURED:
        return RecoveryAction(Recovery.REPRINT_OR_QUEUE, f"{tid}: captured, receipt not printed")
    assert s is S.PRINTED, s  # a new state must get its own rule above
    return RecoveryAction(Recovery.MARK_DONE, f"{tid}: receipt printed, journal DONE")
