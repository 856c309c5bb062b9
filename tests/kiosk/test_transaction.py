import contextlib
import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.domain.transaction import (
    RECORD_VERSION,
    TRANSITIONS,
    InvalidTransition,
    MalformedTransactionRecord,
    Recovery,
    Transaction,
    TxnKind,
    TxnState,
    advance,
    from_record,
    new_transaction,
    recovery_action,
    server_void_reason,
    to_record,
)
from kiosk.errors import JournalError, KioskError

S = TxnState

# Written out by hand so a change to TRANSITIONS has to be made twice, on purpose.
EXPECTED = {
    (S.NEW, S.HELD),
    (S.HELD, S.PAID),
    (S.HELD, S.DOOR_OPENING),
    (S.HELD, S.CAPTURED),
    (S.PAID, S.DOOR_OPENING),
    (S.PAID, S.CAPTURED),
    (S.DOOR_OPENING, S.DISPENSED),
    (S.DOOR_OPENING, S.NEEDS_CHECK),
    (S.DISPENSED, S.CAPTURED),
    (S.CAPTURED, S.PRINTED),
    (S.PRINTED, S.DONE),
    (S.NEW, S.VOIDING),
    (S.HELD, S.VOIDING),
    (S.PAID, S.VOIDING),
    (S.NEEDS_CHECK, S.VOIDING),
    (S.VOIDING, S.VOIDED),
}

SHAPES = {
    "redeem_door": dict(kind=TxnKind.REDEEM, points=500, compartment=3),
    "redeem_coupon": dict(kind=TxnKind.REDEEM, points=200, sku="COUPON-10"),
    "redeem_offline": dict(kind=TxnKind.REDEEM, points=100, compartment=1, offline=True),
    "cash_door": dict(kind=TxnKind.POINTS_CASH, points=300, cash_cents=1990, compartment=7),
    "cash_coupon": dict(kind=TxnKind.POINTS_CASH, points=300, cash_cents=500),
    "spin": dict(kind=TxnKind.SPIN, points=50),
}


def make(shape: str, txn_id: str = "t-1") -> Transaction:
    return new_transaction(txn_id, member_id="m-42", at=0.0, **SHAPES[shape])


def facts_for(new: TxnState) -> dict:
    return {"void_reason": "member cancelled"} if new is S.VOIDING else {}


def step(txn: Transaction, new: TxnState) -> Transaction:
    return advance(txn, new, at=len(txn.history) + 0.5, **facts_for(new))


def reachable() -> dict[TxnState, list[Transaction]]:
    """Every transaction reachable from every shape, by trying every pair."""
    seen: dict[TxnState, list[Transaction]] = {s: [] for s in S}
    todo = [make(shape) for shape in SHAPES]
    while todo:
        txn = todo.pop()
        seen[txn.state].append(txn)
        for new in S:
            with contextlib.suppress(InvalidTransition):
                todo.append(step(txn, new))
    return seen


REACHABLE = reachable()


def test_transitions_are_exactly_the_spec():
    assert TRANSITIONS == EXPECTED


def test_every_state_is_reachable():
    assert [s for s in S if not REACHABLE[s]] == []


@pytest.mark.parametrize(
    "pair", sorted(EXPECTED, key=str), ids=lambda p: f"{p[0].name}-{p[1].name}"
)
def test_allowed_pair_works_for_some_kind(pair):
    old, new = pair
    done = []
    for txn in REACHABLE[old]:
        with contextlib.suppress(InvalidTransition):
            done.append((txn, step(txn, new)))
    assert done, f"no transaction can take {old.name} -> {new.name}"
    for before, after in done:
        assert after.state is new
        assert after.history[:-1] == before.history and after.history[-1][0] is new


ALL_PAIRS = [p for p in itertools.product(S, S) if p not in EXPECTED]


@pytest.mark.parametrize("pair", ALL_PAIRS, ids=lambda p: f"{p[0].name}-{p[1].name}")
def test_every_other_pair_raises(pair):
    old, new = pair
    assert REACHABLE[old]
    for txn in REACHABLE[old]:
        with pytest.raises(InvalidTransition, match=f"{old.name} -> {new.name} is not allowed"):
            advance(txn, new, at=9.0, **facts_for(new))


def test_advance_returns_a_new_frozen_transaction():
    txn = make("redeem_door")
    held = advance(txn, S.HELD, at=1.0, hold_id="h-1")
    assert txn.state is S.NEW and txn.history == ((S.NEW, 0.0),)
    assert held.state is S.HELD and held.hold_id == "h-1"
    assert held.history == ((S.NEW, 0.0), (S.HELD, 1.0))
    with pytest.raises(AttributeError):
        held.state = S.DONE  # type: ignore[misc]


HAPPY = {
    "redeem_door": [S.HELD, S.DOOR_OPENING, S.DISPENSED, S.CAPTURED, S.PRINTED, S.DONE],
    "redeem_coupon": [S.HELD, S.CAPTURED, S.PRINTED, S.DONE],
    "redeem_offline": [S.HELD, S.DOOR_OPENING, S.DISPENSED, S.CAPTURED, S.PRINTED, S.DONE],
    "cash_door": [S.HELD, S.PAID, S.DOOR_OPENING, S.DISPENSED, S.CAPTURED, S.PRINTED, S.DONE],
    "cash_coupon": [S.HELD, S.PAID, S.CAPTURED, S.PRINTED, S.DONE],
    "spin": [S.HELD, S.CAPTURED, S.PRINTED, S.DONE],
}


@pytest.mark.parametrize("shape", sorted(HAPPY))
def test_happy_path(shape):
    txn = make(shape)
    for new in HAPPY[shape]:
        txn = step(txn, new)
    assert [s for s, _ in txn.history] == [S.NEW, *HAPPY[shape]]


def test_spin_learns_its_locker_prize_at_held_and_then_opens_a_door():
    txn = advance(make("spin"), S.HELD, at=1.0, sku="TEDDY", compartment=4)
    assert (txn.sku, txn.compartment) == ("TEDDY", 4)
    with pytest.raises(InvalidTransition, match="never dispensed"):
        step(txn, S.CAPTURED)
    assert step(txn, S.DOOR_OPENING).state is S.DOOR_OPENING


@pytest.mark.parametrize(
    ("shape", "path", "match"),
    [
        ("redeem_door", [S.HELD, S.PAID], "no cash part"),
        ("cash_door", [S.HELD, S.DOOR_OPENING], "not paid"),
        ("cash_coupon", [S.HELD, S.CAPTURED], "not paid"),
        ("redeem_coupon", [S.HELD, S.DOOR_OPENING], "no compartment"),
        ("cash_coupon", [S.HELD, S.PAID, S.DOOR_OPENING], "no compartment"),
        ("redeem_door", [S.HELD, S.CAPTURED], "never dispensed"),
        ("cash_door", [S.HELD, S.PAID, S.CAPTURED], "never dispensed"),
    ],
)
def test_kind_guards(shape, path, match):
    txn = make(shape)
    for new in path[:-1]:
        txn = step(txn, new)
    with pytest.raises(InvalidTransition, match=match):
        step(txn, path[-1])


def test_fact_rules():
    txn = make("redeem_door")
    with pytest.raises(InvalidTransition, match="void_reason"):
        advance(txn, S.VOIDING, at=1.0)
    with pytest.raises(InvalidTransition, match="takes no fact"):
        advance(txn, S.HELD, at=1.0, payment_ref="p")
    with pytest.raises(InvalidTransition, match="only a spin"):
        advance(txn, S.HELD, at=1.0, compartment=9)
    opening = step(step(txn, S.HELD), S.DOOR_OPENING)
    jammed = advance(opening, S.NEEDS_CHECK, at=3.0, void_reason="door jammed")
    assert jammed.needs_check and not opening.needs_check
    assert advance(jammed, S.VOIDING, at=4.0).void_reason == "door jammed"


@pytest.mark.parametrize(
    "shape",
    [
        dict(kind=TxnKind.SPIN, points=50, offline=True),
        dict(kind=TxnKind.POINTS_CASH, points=1, cash_cents=100, offline=True),
        dict(kind=TxnKind.POINTS_CASH, points=1),
        dict(kind=TxnKind.REDEEM, points=10, cash_cents=5),
        dict(kind=TxnKind.REDEEM, points=0),
        dict(kind=TxnKind.REDEEM, points=-1),
        dict(kind=TxnKind.REDEEM, points=10, compartment=-2),
    ],
)
def test_new_transaction_refuses_broken_kind_rules(shape):
    with pytest.raises(ValueError, match="t-9"):
        new_transaction("t-9", member_id="m", at=0.0, **shape)


# ---- records -------------------------------------------------------------------------------


@st.composite
def transactions(draw):
    shape = draw(st.sampled_from(sorted(SHAPES)))
    txn = new_transaction(
        draw(st.uuids()).hex, member_id=draw(st.text(min_size=1)), at=0.0, **SHAPES[shape]
    )
    times = st.floats(allow_nan=False, allow_infinity=False)
    for _ in range(draw(st.integers(0, 8))):
        options = []
        for new in S:
            try:
                step(txn, new)
                options.append(new)
            except InvalidTransition:
                pass
        if not options:
            break
        new = draw(st.sampled_from(options))
        facts = facts_for(new)
        if new is S.VOIDING:
            facts = {"void_reason": draw(st.text(min_size=1))}
        elif new is S.HELD:
            facts = {"hold_id": draw(st.text())}
        elif new is S.PRINTED:
            facts = {"receipt_queued": draw(st.booleans())}
        txn = advance(txn, new, at=draw(times), **facts)
    return txn


@given(transactions())
def test_record_round_trip(txn):
    record = json.loads(json.dumps(to_record(txn), allow_nan=False))
    assert record["v"] == RECORD_VERSION
    assert from_record(record) == txn


@given(transactions())
def test_recovery_never_pulses(txn):
    action = recovery_action(txn)
    assert action.reason
    if txn.state in (S.DOOR_OPENING, S.NEEDS_CHECK):
        assert action.action is Recovery.MARK_NEEDS_CHECK_AND_VOID
        assert action.claim_voucher and action.alert_staff
        assert action.compartment == txn.compartment


def _good_record() -> dict:
    txn = step(step(make("cash_door", "t-77"), S.HELD), S.PAID)
    return to_record(txn)


def _set(key, value):
    def mutate(rec):
        rec[key] = value

    return mutate


def _drop(key):
    return lambda rec: rec.pop(key)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (_set("v", 2), "v"),
        (_drop("v"), "v"),
        (_set("member_id", ""), "member_id"),
        (_set("member_id", 5), "member_id"),
        (_set("kind", "lottery"), "kind"),
        (_set("state", "FLYING"), "state"),
        (_set("state", "HELD"), "state"),
        (_set("history", []), "history"),
        (_set("history", "NEW"), "history"),
        (_set("history", [["NEW"]]), "history[0]"),
        (_set("history", [["NEW", "soon"]]), "history[0]"),
        (_set("history", [["NEW", True]]), "history[0]"),
        (_set("history", [["NEW", float("nan")]]), "history[0]"),
        (_set("history", [["HELD", 1.0]]), "history[0]"),
        (_set("history", [["NEW", 0], ["PAID", 1]]), "history[1]"),
        (_set("history", [["NEW", 0], ["BOOM", 1]]), "history[1]"),
        (_set("points", -5), "points"),
        (_set("points", 1.5), "points"),
        (_set("cash_cents", 0), "cash_cents"),
        (_set("compartment", "3"), "compartment"),
        (_set("offline", True), "offline"),
        (_set("offline", "no"), "offline"),
        (_set("receipt_queued", None), "receipt_queued"),
        (_set("sku", 12), "sku"),
    ],
)
def test_malformed_record_names_txn_and_field(mutate, field):
    record = _good_record()
    assert from_record(record).state is S.PAID
    mutate(record)
    with pytest.raises(MalformedTransactionRecord) as caught:
        from_record(record)
    assert isinstance(caught.value, JournalError) and isinstance(caught.value, KioskError)
    assert caught.value.txn_id == "t-77" and caught.value.field == field
    assert "'t-77'" in str(caught.value) and repr(field) in str(caught.value)


@pytest.mark.parametrize("record", [None, [], "txn", {"txn_id": 3}])
def test_record_that_is_not_a_transaction_at_all(record):
    with pytest.raises(MalformedTransactionRecord, match="<unknown>"):
        from_record(record)


# ---- recovery ------------------------------------------------------------------------------

RECOVERY = {
    S.NEW: Recovery.VOID,
    S.HELD: Recovery.VOID,
    S.PAID: Recovery.VOID,
    S.DOOR_OPENING: Recovery.MARK_NEEDS_CHECK_AND_VOID,
    S.NEEDS_CHECK: Recovery.MARK_NEEDS_CHECK_AND_VOID,
    S.DISPENSED: Recovery.CAPTURE,
    S.CAPTURED: Recovery.REPRINT_OR_QUEUE,
    S.PRINTED: Recovery.MARK_DONE,
    S.VOIDING: Recovery.VOID,
    S.DONE: Recovery.NOTHING,
    S.VOIDED: Recovery.NOTHING,
}


def expected_recovery(txn: Transaction) -> Recovery:
    # a spin the server may have drawn with no gift door: asked, and captured if drawn
    doorless = txn.state is S.NEW or (txn.state is S.HELD and txn.compartment is None)
    if txn.kind is TxnKind.SPIN and doorless:
        return Recovery.SETTLE_SPIN
    return RECOVERY[txn.state]


@pytest.mark.parametrize("state", list(S), ids=lambda s: s.name)
def test_recovery_action_for_every_state(state):
    for txn in REACHABLE[state]:
        action = recovery_action(txn)
        assert action.action is expected_recovery(txn)
        assert txn.txn_id in action.reason


def test_only_a_spin_with_a_gift_door_is_voided_as_gift_not_dispensed():
    gift = advance(make("spin"), S.HELD, at=1.0, sku="GIFT-TOTE", compartment=2)
    assert recovery_action(gift).action is Recovery.VOID  # its door never opened
    assert server_void_reason(gift, "door_jammed: not open") == (
        "gift_not_dispensed: door_jammed: not open"
    )
    assert server_void_reason(gift, "gift_not_dispensed: x") == "gift_not_dispensed: x"
    assert len(server_void_reason(gift, "x" * 500)) == 200
    redeem = next(t for t in REACHABLE[S.HELD] if t.kind is TxnKind.REDEEM)
    assert server_void_reason(redeem, "door_jammed") == "door_jammed"


def test_door_opening_recovery_flags_compartment_and_never_pulses():
    txn = step(step(make("redeem_door"), S.HELD), S.DOOR_OPENING)
    action = recovery_action(txn)
    assert action.action is Recovery.MARK_NEEDS_CHECK_AND_VOID
    assert (action.claim_voucher, action.alert_staff, action.compartment) == (True, True, 3)
    assert "never pulse" in action.reason


def test_a_voiding_that_needed_a_check_still_gets_its_claim_voucher():
    txn = step(step(make("redeem_door"), S.HELD), S.DOOR_OPENING)
    voiding = step(step(txn, S.NEEDS_CHECK), S.VOIDING)
    assert recovery_action(voiding).claim_voucher
    plain = step(step(make("redeem_door"), S.HELD), S.VOIDING)
    assert not recovery_action(plain).claim_voucher


def test_there_is_no_pulse_action_in_recovery():
    names = {r.name for r in Recovery} | {r.value.upper() for r in Recovery}
    assert not [n for n in names if "PULSE" in n or "OPEN" in n or "DISPENSE" in n]


def test_once_the_door_was_pulsed_no_path_leads_back_to_a_pulse():
    # Everything recovery may do from DOOR_OPENING goes through NEEDS_CHECK; from there the
    # graph must never reach DOOR_OPENING (a second pulse) or DISPENSED again.
    frontier, seen = [S.NEEDS_CHECK], set()
    while frontier:
        state = frontier.pop()
        seen.add(state)
        frontier += [b for a, b in TRANSITIONS if a is state and b not in seen]
    assert seen == {S.NEEDS_CHECK, S.VOIDING, S.VOIDED}
    assert (S.DOOR_OPENING, S.VOIDING) not in TRANSITIONS
    assert not [a for a, b in TRANSITIONS if b is S.DOOR_OPENING and a not in (S.HELD, S.PAID)]


def test_an_offline_transaction_keeps_its_member_code_and_an_old_record_has_none():
    code = "LK1.M.M0002.1795430568.1795430628.3cb926fd282aeadb." + "A" * 86
    txn = new_transaction("t-code", TxnKind.REDEEM, "M0002", points=300, at=1.0,
                          sku="GIFT-TOTE", compartment=2, offline=True, member_code=code)  # fmt: skip
    record = json.loads(json.dumps(to_record(txn)))
    assert from_record(record).member_code == code
    del record["member_code"]  # journalled before kiosks kept the code
    assert from_record(record).member_code is None
    with pytest.raises(ValueError):
        new_transaction("t-long", TxnKind.REDEEM, "M0002", points=300, at=1.0, sku="GIFT-TOTE",
                        compartment=2, offline=True, member_code="x" * 257)  # fmt: skip
