"""The lucky wheel: outcomes recomputable from the revealed seed, fair odds, out-of-stock rules.

The recomputation here is the test's own implementation of the algorithm documented in the
``storeserver.wheel`` docstring (it never calls ``wheel.draw``)::

    u = first 8 bytes of HMAC-SHA256(seed, txn_id) as a big-endian integer
    r = u mod W, W the sum of the weights of the eligible segments
    the segment is the first eligible one (in index order) whose running weight sum exceeds r
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import random
import uuid

import pytest

from storeserver import demo, spins, wheel
from storeserver.errors import ApiError
from tests.storeserver.conftest import KIOSK, open_session

MEMBER = "M0004"  # 23,000 points: can pay for a thousand spins

# a test wheel: (idx, prize_kind, prize_points, prize_sku, weight, stock)
BIG = "BIG"
BIG_COST = 10
BIG_SEGMENTS = [
    (0, "none", 0, None, 40, None),
    (1, "points", 5, None, 30, None),
    (2, "points", 100, None, 12, 60),  # ~120 wins expected in 1,000 spins: runs out midway
    (3, "coupon", 0, "CPN-10", 8, 25),  # runs out too
    (4, "gift", 0, "GIFT-TOTE", 6, 50),  # its kiosk compartment (5 totes) runs out first
    (5, "gift", 0, "GIFT-UMBRELLA", 4, None),  # unlimited prize, but 1 umbrella in the kiosk
]

# chi-square critical values at p = 0.001 by degrees of freedom (standard tables)
CHI2_CRITICAL_P001 = {5: 20.515}


def recompute(seed: bytes, txn_id: str, eligible: list[list[int]] | list[tuple[int, int]]) -> int:
    """The documented draw, written independently of ``wheel.draw``."""
    digest = hmac.new(seed, txn_id.encode("utf-8"), hashlib.sha256).digest()
    u = int.from_bytes(digest[:8], byteorder="big", signed=False)
    r = u % sum(weight for _, weight in eligible)
    running = 0
    for idx, weight in sorted(eligible):  # index order
        running += weight
        if r < running:
            return idx
    raise AssertionError("r must be below the total weight")


def add_big_wheel(store, daily_limit: int = 2000) -> None:
    with store.db.transaction() as conn:
        conn.execute(
            "INSERT INTO wheels(id, name_zh, name_en, cost_points, daily_limit) VALUES (?,?,?,?,?)",
            (BIG, "测试转盘", "Test wheel", BIG_COST, daily_limit),
        )
        conn.executemany(
            "INSERT INTO wheel_segments(wheel_id, idx, label_zh, label_en, prize_kind, "
            "prize_points, prize_sku, weight, stock) VALUES (?,?,?,?,?,?,?,?,?)",
            [(BIG, idx, f"奖{idx}", f"prize {idx}", *rest) for idx, *rest in BIG_SEGMENTS],
        )


def kiosk_stock(store, sku: str) -> int:
    row = (
        store.db.connection()
        .execute(
            "SELECT COALESCE(SUM(stock), 0) AS n FROM compartments WHERE kiosk_id = ? AND sku = ?",
            (KIOSK, sku),
        )
        .fetchone()
    )
    return row["n"]


def balance(store, member_id: str = MEMBER) -> int:
    return store.ledger.balance(store.db.connection(), member_id, store.today())


# ---- 1,000 spins, recomputed from the revealed seed ----------------------------------------------
def test_thousand_spins_recompute_from_revealed_seed(store, clock, kiosk, anon) -> None:
    add_big_wheel(store)
    day = store.today()

    # the kiosk shows the wheel, and with it the day's commitment, before anyone spins
    info = kiosk.get(f"/v1/wheels/{BIG}")
    assert info.status_code == 200, info.text
    published = info.json()["commitments"][day.isoformat()]
    assert "HMAC-SHA256" in info.json()["algorithm"]

    # our own model of what may be won: prize stock and the kiosk's compartments
    seg_stock = {idx: stock for idx, _, _, _, _, stock in BIG_SEGMENTS}
    comp_stock = {
        sku: kiosk_stock(store, sku) for _, kind, _, sku, _, _ in BIG_SEGMENTS if kind == "gift"
    }
    weights = {idx: weight for idx, *_, weight, _ in BIG_SEGMENTS}
    kinds = {idx: (kind, sku) for idx, kind, _, sku, _, _ in BIG_SEGMENTS}

    def expected_eligible() -> list[list[int]]:
        out = []
        for idx, (kind, sku) in sorted(kinds.items()):
            if seg_stock[idx] is not None and seg_stock[idx] <= 0:
                continue
            if kind == "gift" and comp_stock[sku] <= 0:
                continue
            out.append([idx, weights[idx]])
        return out

    rnd = random.Random(7)
    served: dict[str, tuple[int, list[list[int]]]] = {}
    voided = captured = 0
    balance_before = balance(store)
    session = open_session(store, KIOSK, MEMBER)  # the member scanned their code
    for _ in range(1000):
        txn_id = str(uuid.uuid4())
        eligible_now = expected_eligible()
        answer = spins.spin(
            store.redemptions,
            KIOSK,
            {"txn_id": txn_id, "member_id": MEMBER, "wheel_id": BIG},
            session,
        )
        prize = answer["prize"]
        assert answer["state"] == "held"
        assert prize["eligible"] == eligible_now, "the server drew from a different set of prizes"
        assert prize["commitment"] == published
        assert prize["day"] == day.isoformat()
        idx = prize["segment_idx"]
        served[txn_id] = (idx, prize["eligible"])
        kind, sku = kinds[idx]
        if seg_stock[idx] is not None:
            seg_stock[idx] -= 1
        if kind == "gift":
            comp_stock[sku] -= 1
            assert answer["compartment"] is not None and answer["sku"] == sku

        roll = rnd.random()
        if kind == "gift" and roll < 0.5:  # only a gift whose door failed may be voided
            reason = "gift_not_dispensed: door_jammed"
            assert store.redemptions.void(KIOSK, txn_id, reason)["state"] == "voided"
            voided += 1
            if seg_stock[idx] is not None:
                seg_stock[idx] += 1
            if kind == "gift":
                comp_stock[sku] += 1
        elif roll < 0.55:
            assert store.redemptions.capture(KIOSK, txn_id)["state"] == "captured"
            captured += 1

    # the model and the server agree on what is left
    conn = store.db.connection()
    for s in wheel.segments(conn, BIG):
        assert s.stock == seg_stock[s.idx], s
    for sku, left in comp_stock.items():
        assert kiosk_stock(store, sku) == left, sku
    # prizes ran out midway: each limited one was eligible at first and missing later
    for idx in (2, 3, 4, 5):
        present = [idx in [i for i, _ in eligible] for _, eligible in served.values()]
        assert present[0] and not all(present), f"segment {idx} never ran out"
    assert 0 < voided < 20 and 450 < captured < 700  # the kiosk has few gifts
    assert balance(store) < balance_before

    # today's seed is still secret
    early = anon.get(f"/v1/wheels/{BIG}/seeds/{day.isoformat()}")
    assert early.status_code == 409 and early.json()["error"] == "seed_not_revealed"

    # the next day it is revealed, with no auth, and it matches the commitment of the day before
    clock.advance(days=1)
    assert store.today() == day + dt.timedelta(days=1)
    resp = anon.get(f"/v1/wheels/{BIG}/seeds/{day.isoformat()}")
    assert resp.status_code == 200, resp.text
    revealed = resp.json()
    seed = bytes.fromhex(revealed["seed"])
    assert len(seed) == 32
    assert hashlib.sha256(seed).hexdigest() == published == revealed["commitment"]

    # every spin of the day is listed (voided ones too) and recomputes to what was served
    listed = {s["txn_id"]: s for s in revealed["spins"]}
    assert set(listed) == set(served)
    wins = dict.fromkeys(weights, 0)
    for txn_id, (idx, eligible) in served.items():
        assert listed[txn_id]["eligible"] == eligible
        assert listed[txn_id]["segment_idx"] == idx
        assert recompute(seed, txn_id, eligible) == idx, txn_id
        wins[idx] += 1
    assert all(wins.values()), wins


def test_seed_of_today_and_later_is_refused(store, kiosk, anon) -> None:
    day = store.today()
    assert kiosk.get(f"/v1/wheels/{demo.WHEEL[0]}").status_code == 200  # commits today and tomorrow
    for d in (day, day + dt.timedelta(days=1)):
        resp = anon.get(f"/v1/wheels/{demo.WHEEL[0]}/seeds/{d.isoformat()}")
        assert resp.status_code == 409, resp.text
        assert resp.json()["error"] == "seed_not_revealed"


# ---- chi-square goodness of fit ------------------------------------------------------------------
def chi_square(counts: dict[int, int], weights: dict[int, int]) -> float:
    n = sum(counts.values())
    total = sum(weights.values())
    stat = 0.0
    for idx, weight in weights.items():
        expected = n * weight / total
        stat += (counts.get(idx, 0) - expected) ** 2 / expected
    return stat


def fits(counts: dict[int, int], weights: dict[int, int]) -> bool:
    """Do the counts fit the weights, by a chi-square test at p = 0.001?"""
    return chi_square(counts, weights) < CHI2_CRITICAL_P001[len(weights) - 1]


@pytest.fixture(scope="module")
def demo_draws() -> dict[int, int]:
    """10,000 draws of the demo wheel's full odds with a fixed seed and deterministic txn ids."""
    seed = hashlib.sha256(b"chi-square test seed").digest()
    rnd = random.Random(1234)
    eligible = [(idx, seg[5]) for idx, seg in enumerate(demo.SEGMENTS)]  # (idx, weight)
    counts = dict.fromkeys(range(len(eligible)), 0)
    for _ in range(10_000):
        txn_id = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
        counts[wheel.draw(seed, txn_id, eligible)] += 1
    return counts


def test_draws_fit_the_demo_weights(demo_draws) -> None:
    weights = {idx: seg[5] for idx, seg in enumerate(demo.SEGMENTS)}
    assert len(weights) == 6  # 5 degrees of freedom: critical value 20.515 at p = 0.001
    stat = chi_square(demo_draws, weights)
    assert fits(demo_draws, weights), f"chi-square {stat:.2f} >= 20.515: the draw is not fair"


@pytest.mark.parametrize(
    "wrong",
    [
        [25, 50, 10, 10, 4, 1],  # two prizes swapped
        [50, 25, 10, 10, 1, 4],  # the rare prizes swapped
        [1, 1, 1, 1, 1, 1],  # uniform
        [50, 25, 10, 10, 3, 2],  # one point of weight moved from the tote to the mug
    ],
)
def test_the_fit_test_rejects_wrong_weights(demo_draws, wrong) -> None:
    assert not fits(demo_draws, dict(enumerate(wrong))), chi_square(
        demo_draws, dict(enumerate(wrong))
    )


# ---- out of stock, daily limit, void -------------------------------------------------------------
def lucky_info(kiosk, member_id: str = MEMBER) -> dict:
    resp = kiosk.get(
        f"/v1/wheels/{demo.WHEEL[0]}",
        params={"member_id": member_id},
        headers=kiosk.member_session(member_id),
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def seed_of_today(store, wheel_id: str) -> bytes:
    row = (
        store.db.connection()
        .execute(
            "SELECT seed_hex FROM wheel_seeds WHERE wheel_id = ? AND day = ?",
            (wheel_id, store.today().isoformat()),
        )
        .fetchone()
    )
    return bytes.fromhex(row["seed_hex"])


def txn_landing_on(seed: bytes, eligible: list[tuple[int, int]], idx: int) -> str:
    """A txn id the documented draw sends to segment ``idx`` (found by trying random ids)."""
    while True:
        txn_id = str(uuid.uuid4())
        if recompute(seed, txn_id, eligible) == idx:
            return txn_id


def post_spin(kiosk, txn_id: str, member_id: str = MEMBER):
    return kiosk.post(
        "/v1/wheel/spins",
        json={"txn_id": txn_id, "member_id": member_id, "wheel_id": demo.WHEEL[0]},
        headers=kiosk.member_session(member_id),
    )


def test_out_of_stock_prize_leaves_the_draw_and_the_odds(store, kiosk) -> None:
    lucky, limited = demo.WHEEL[0], 2  # segment 2: 200 points, stock 20
    with store.db.transaction() as conn:
        conn.execute(
            "UPDATE wheel_segments SET stock = 1 WHERE wheel_id = ? AND idx = ?", (lucky, limited)
        )
    weights = {idx: seg[5] for idx, seg in enumerate(demo.SEGMENTS)}
    full = sorted(weights.items())

    info = lucky_info(kiosk)
    odds = {s["idx"]: s["odds"] for s in info["segments"]}
    assert odds == pytest.approx({i: w / 100 for i, w in weights.items()})
    assert info["spins_left"] == 3

    # the spin that wins the last one
    seed = seed_of_today(store, lucky)
    last_one = txn_landing_on(seed, full, limited)
    resp = post_spin(kiosk, last_one)
    assert resp.status_code == 200, resp.text
    assert resp.json()["prize"]["segment_idx"] == limited
    assert resp.json()["prize"]["eligible"] == [list(p) for p in full]

    # now it is out: odds 0, the others keep their relative weights over what is left
    info = lucky_info(kiosk)
    left = 100 - weights[limited]
    by_idx = {s["idx"]: s for s in info["segments"]}
    assert by_idx[limited]["stock"] == 0 and by_idx[limited]["odds"] == 0.0
    for idx, weight in weights.items():
        if idx != limited:
            assert by_idx[idx]["odds"] == pytest.approx(weight / left)
    assert sum(s["odds"] for s in info["segments"]) == pytest.approx(1.0)
    assert info["spins_left"] == 2

    # and it is no longer drawn, even by a txn id that would have landed on it
    would_win = txn_landing_on(seed, full, limited)
    resp = post_spin(kiosk, would_win)
    assert resp.status_code == 200, resp.text
    prize = resp.json()["prize"]
    assert limited not in [i for i, _ in prize["eligible"]]
    assert prize["eligible"] == [[i, w] for i, w in full if i != limited]
    assert prize["segment_idx"] != limited
    assert prize["segment_idx"] == recompute(seed, would_win, prize["eligible"])


def test_daily_limit_and_a_gift_void_gives_back_the_cost_and_prize_not_the_spin(
    store, kiosk
) -> None:
    lucky, limited = demo.WHEEL[0], 4  # the tote: a gift, one left
    with store.db.transaction() as conn:
        conn.execute(
            "UPDATE wheel_segments SET stock = 1 WHERE wheel_id = ? AND idx = ?", (lucky, limited)
        )
    full = [(idx, seg[5]) for idx, seg in enumerate(demo.SEGMENTS)]
    daily_limit, cost = demo.WHEEL[4], demo.WHEEL[3]

    lucky_info(kiosk)  # commits today's seed
    seed = seed_of_today(store, lucky)
    start = balance(store)
    txns = [txn_landing_on(seed, full, limited)] + [
        str(uuid.uuid4()) for _ in range(daily_limit - 1)
    ]
    for txn_id in txns:
        resp = post_spin(kiosk, txn_id)
        assert resp.status_code == 200, resp.text
    assert balance(store) == start - daily_limit * cost
    assert lucky_info(kiosk)["spins_left"] == 0

    # one more is refused, and changes nothing
    refused = post_spin(kiosk, str(uuid.uuid4()))
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "daily_limit_reached"
    with pytest.raises(ApiError) as exc:
        spins.spin(
            store.redemptions,
            KIOSK,
            {"txn_id": str(uuid.uuid4()), "member_id": MEMBER, "wheel_id": lucky},
            open_session(store, KIOSK, MEMBER),
        )
    assert exc.value.code == "daily_limit_reached"
    assert balance(store) == start - daily_limit * cost

    # the tote's door failed: the void gives back the cost and the prize, and tells staff
    by_idx = {s["idx"]: s for s in lucky_info(kiosk)["segments"]}
    assert by_idx[limited]["stock"] == 0
    voided = kiosk.post(
        f"/v1/redemptions/{txns[0]}/void",
        json={"reason": "gift_not_dispensed: door_jammed: not open after 3.0 s"},
    )
    assert voided.status_code == 200, voided.text
    assert voided.json()["state"] == "voided"
    assert balance(store) == start - (daily_limit - 1) * cost
    info = lucky_info(kiosk)
    by_idx = {s["idx"]: s for s in info["segments"]}
    assert by_idx[limited]["stock"] == 1
    assert by_idx[limited]["odds"] == pytest.approx(demo.SEGMENTS[limited][5] / 100)
    assert alerts_of(store, "spin_gift_not_dispensed") == [txns[0]]
    # but not the spin: it was drawn (docs/transactions.md, "The wheel's rule")
    assert info["spins_left"] == 0
    assert post_spin(kiosk, str(uuid.uuid4())).json()["error"] == "daily_limit_reached"

    # a new day brings new spins
    store.clock.advance(days=1)
    assert lucky_info(kiosk)["spins_left"] == daily_limit


def alerts_of(store, kind: str) -> list[str]:
    rows = store.db.connection().execute("SELECT detail FROM alerts WHERE kind = ?", (kind,))
    return [json.loads(r["detail"])["txn_id"] for r in rows]


def ledger_figures(store) -> tuple:
    """Everything a spin can change: balance, held/captured/voided spins, prize and gift stock."""
    conn = store.db.connection()
    states = conn.execute(
        "SELECT txn_id, state FROM redemptions WHERE kind = 'spin' ORDER BY txn_id"
    ).fetchall()
    stock = conn.execute("SELECT idx, stock FROM wheel_segments ORDER BY idx").fetchall()
    comps = conn.execute("SELECT number, stock FROM compartments ORDER BY kiosk_id, number")
    return (
        balance(store),
        [tuple(r) for r in states],
        [tuple(r) for r in stock],
        [tuple(r) for r in comps.fetchall()],
    )


def test_respin_until_you_win_is_refused(store, kiosk) -> None:
    """The attack: spin, see the prize, void, spin again, until the tote comes up. Each void
    is refused and changes nothing; every spin counts; the wheel stops at the daily limit."""
    start = balance(store)
    daily_limit, cost = demo.WHEEL[4], demo.WHEEL[3]
    spun = []
    for _ in range(10):
        txn_id = str(uuid.uuid4())
        resp = post_spin(kiosk, txn_id)
        if resp.status_code == 409:
            assert resp.json()["error"] == "daily_limit_reached", resp.text
            continue
        assert resp.status_code == 200, resp.text
        spun.append(txn_id)
        before = ledger_figures(store)
        for reason in ("member_cancelled", "door_jammed", "bad_prize", "restart_before_door"):
            void = kiosk.post(f"/v1/redemptions/{txn_id}/void", json={"reason": reason})
            assert void.status_code == 409, void.text
            body = void.json()
            assert body["error"] == "spin_not_voidable" and "capture" in body["message"]
            assert ledger_figures(store) == before
    assert len(spun) == daily_limit
    assert balance(store) == start - daily_limit * cost
    assert lucky_info(kiosk)["spins_left"] == 0
    assert alerts_of(store, "spin_gift_not_dispensed") == []


def test_a_spin_without_a_gift_is_never_voided_even_as_a_door_failure(store, kiosk) -> None:
    with store.db.transaction() as conn:  # only "50 points" left in the draw
        conn.execute("UPDATE wheel_segments SET stock = 0 WHERE idx != 1")
    txn_id = str(uuid.uuid4())
    assert post_spin(kiosk, txn_id).status_code == 200
    before = ledger_figures(store)
    void = kiosk.post(f"/v1/redemptions/{txn_id}/void", json={"reason": "gift_not_dispensed: x"})
    assert void.status_code == 409 and void.json()["error"] == "spin_not_voidable"
    assert ledger_figures(store) == before
    captured = kiosk.post(f"/v1/redemptions/{txn_id}/capture")
    assert captured.status_code == 200 and captured.json()["state"] == "captured"


def test_a_stale_spin_is_captured_unless_its_gift_was_never_confirmed(store, kiosk) -> None:
    """Letting a hold expire is no way round the rule: a doorless prize is captured (the
    member keeps it), a gift is released like a door failure and staff are told."""
    start = balance(store)
    with store.db.transaction() as conn:  # "50 points" only
        conn.execute("UPDATE wheel_segments SET stock = 0 WHERE idx != 1")
    points_spin = str(uuid.uuid4())
    assert post_spin(kiosk, points_spin).status_code == 200
    with store.db.transaction() as conn:  # the tote only
        conn.execute("UPDATE wheel_segments SET stock = NULL WHERE idx = 4")
        conn.execute("UPDATE wheel_segments SET stock = 0 WHERE idx != 4")
    gift_spin = str(uuid.uuid4())
    assert post_spin(kiosk, gift_spin).json()["compartment"] is not None
    tote_stock = kiosk_stock(store, "GIFT-TOTE")

    store.clock.advance(seconds=store.redemptions.hold_expiry_s + 1)
    assert lucky_info(kiosk)["spins_left"] == 1  # both still count
    states = {t: s for t, s in ledger_figures(store)[1]}
    assert states == {points_spin: "held", gift_spin: "held"}  # swept by the next write
    assert post_spin(kiosk, str(uuid.uuid4())).status_code == 200
    states = {t: s for t, s in ledger_figures(store)[1]}
    assert states[points_spin] == "captured" and states[gift_spin] == "expired"
    assert balance(store) == start - 3 * 100 + 100 + 50  # the gift's cost back, 50 won
    assert kiosk_stock(store, "GIFT-TOTE") == tote_stock + 1 - 1  # back, then drawn again
    assert alerts_of(store, "spin_gift_expired") == [gift_spin]
    assert kiosk.post(f"/v1/redemptions/{points_spin}/capture").json()["state"] == "captured"


def test_a_spin_at_another_cost_than_shown_is_refused_before_the_draw(store, kiosk) -> None:
    session = kiosk.member_session(MEMBER)
    before = ledger_figures(store)
    body = {"txn_id": str(uuid.uuid4()), "member_id": MEMBER, "wheel_id": "LUCKY"}
    resp = kiosk.post("/v1/wheel/spins", json={**body, "cost_points": 90}, headers=session)
    assert resp.status_code == 409 and resp.json()["error"] == "price_changed", resp.text
    assert "100 points" in resp.json()["message"]
    assert ledger_figures(store) == before
    assert lucky_info(kiosk)["spins_left"] == 3
    again = kiosk.post("/v1/wheel/spins", json={**body, "cost_points": 100}, headers=session)
    assert again.status_code == 200, again.text


def test_gift_without_stocked_compartment_is_not_drawn(store, kiosk) -> None:
    """A gift prize with prize stock left but an empty compartment at this kiosk leaves the draw."""
    lucky = demo.WHEEL[0]
    gifts = {idx for idx, seg in enumerate(demo.SEGMENTS) if seg[2] == "gift"}
    with store.db.transaction() as conn:
        conn.execute("UPDATE compartments SET stock = 0 WHERE kiosk_id = ?", (KIOSK,))
    resp = post_spin(kiosk, str(uuid.uuid4()))
    assert resp.status_code == 200, resp.text
    eligible = [i for i, _ in resp.json()["prize"]["eligible"]]
    assert gifts and not gifts & set(eligible)
    assert eligible == [i for i in range(len(demo.SEGMENTS)) if i not in gifts]
    with store.db.transaction() as conn:
        assert all(s.stock is None or s.stock > 0 for s in wheel.segments(conn, lucky))


def test_published_odds_are_those_of_the_asking_kiosk(store, kiosk, other_kiosk) -> None:
    with store.db.transaction() as conn:  # kiosk-02 has no tote bag left, kiosk-01 has five
        conn.execute("UPDATE compartments SET stock = 0 WHERE kiosk_id = 'kiosk-02' AND number = 2")
    here = {s["idx"]: s["odds"] for s in kiosk.get("/v1/wheels/LUCKY").json()["segments"]}
    there = {s["idx"]: s["odds"] for s in other_kiosk.get("/v1/wheels/LUCKY").json()["segments"]}
    assert here[4] == pytest.approx(4 / 100) and there[4] == 0.0
    assert there[0] == pytest.approx(50 / 96) and sum(there.values()) == pytest.approx(1.0)


def test_commitments_are_published_a_day_ahead(store, kiosk, clock) -> None:
    published = kiosk.get("/v1/wheels/LUCKY").json()["commitments"]
    tomorrow = (store.today() + dt.timedelta(days=1)).isoformat()
    assert tomorrow in published
    clock.advance(days=1)
    assert kiosk.get("/v1/wheels/LUCKY").json()["commitments"][tomorrow] == published[tomorrow]


def test_a_switched_off_wheel_still_reveals_its_past_seeds(store, kiosk, anon, clock) -> None:
    body = {"txn_id": str(uuid.uuid4()), "member_id": "M0004", "wheel_id": "LUCKY"}
    spins.spin(store.redemptions, KIOSK, body, open_session(store, KIOSK, "M0004"))
    day = store.today().isoformat()
    with store.db.transaction() as conn:
        conn.execute("UPDATE wheels SET active = 0 WHERE id = 'LUCKY'")
    clock.advance(days=1)
    revealed = anon.get(f"/v1/wheels/LUCKY/seeds/{day}")
    assert revealed.status_code == 200 and [s["txn_id"] for s in revealed.json()["spins"]] == [
        body["txn_id"]
    ]


def test_a_stale_coupon_spin_whose_coupon_was_retired_is_released_not_a_failed_sweep(
    store, kiosk
) -> None:
    """The expiry capture of a coupon prize needs the coupon item; retired since, the spin is
    released instead, and the write that swept it still succeeds."""
    start = balance(store)
    with store.db.transaction() as conn:  # the ¥10 coupon only
        conn.execute("UPDATE wheel_segments SET stock = 0 WHERE idx != 3")
    stale = str(uuid.uuid4())
    assert post_spin(kiosk, stale).status_code == 200
    with store.db.transaction() as conn:
        conn.execute("UPDATE items SET active = 0 WHERE sku = 'CPN-10'")
        conn.execute("UPDATE wheel_segments SET stock = NULL WHERE idx = 1")  # 50 points
    store.clock.advance(seconds=store.redemptions.hold_expiry_s + 1)
    resp = post_spin(kiosk, str(uuid.uuid4()))  # its sweep meets the stale spin
    assert resp.status_code == 200, resp.text
    states = dict(ledger_figures(store)[1])
    assert states[stale] == "expired"
    assert balance(store) == start - 100  # the stale spin's cost back; the new one held
