"""Per-token rate limits: the token bucket on its own (storeserver/ratelimit.py, with a fixed
clock), and the four route groups over HTTP answering 429 rate_limited with Retry-After."""

from __future__ import annotations

import uuid

import pytest

from storeserver import codes, staff
from storeserver.ratelimit import DEFAULT_RATES, Rate, RateLimiter
from storeserver.runner import ServerThread
from storeserver.store import Store, StoreSettings

from .conftest import KIOSK, db_snapshot, enroll


class FixedClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_bucket_allows_its_burst_then_its_rate():
    clock = FixedClock()
    limiter = RateLimiter({"holds": Rate(per_minute=60, burst=3)}, clock)
    assert [limiter.take("a", "holds") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", "holds") == pytest.approx(1.0)  # one a second
    assert limiter.take("a", "holds") == pytest.approx(1.0)  # a refusal spends nothing
    assert limiter.take("b", "holds") == 0.0  # another token has its own bucket
    clock.t += 0.5
    assert limiter.take("a", "holds") == pytest.approx(0.5)
    clock.t += 0.5
    assert limiter.take("a", "holds") == 0.0
    clock.t += 3600
    assert [limiter.take("a", "holds") for _ in range(4)][-1] > 0  # refilled to the burst only


def test_groups_are_separate_and_an_unlisted_group_is_not_limited():
    limiter = RateLimiter({"pin": Rate(60, 1), "holds": Rate(60, 1)}, FixedClock())
    assert limiter.take("a", "pin") == 0.0 and limiter.take("a", "holds") == 0.0
    assert limiter.take("a", "pin") > 0 and limiter.take("a", "holds") > 0
    assert all(limiter.take("a", "catalog") == 0.0 for _ in range(100))


def test_a_clock_stepping_back_refills_nothing_and_keys_are_bounded():
    clock = FixedClock()
    limiter = RateLimiter({"g": Rate(60, 1)}, clock, max_keys=2)
    assert limiter.take("a", "g") == 0.0
    clock.t -= 100
    assert limiter.take("a", "g") > 0
    limiter.take("b", "g")
    limiter.take("c", "g")  # "a" is the least recently used: dropped, back full
    assert len(limiter._buckets) == 2 and limiter.take("a", "g") == 0.0


def test_a_rate_must_allow_something():
    with pytest.raises(ValueError):
        Rate(per_minute=0, burst=1)
    with pytest.raises(ValueError):
        Rate(per_minute=10, burst=0)


# ---- over HTTP ----------------------------------------------------------------------------------
BURST = 3


@pytest.fixture
def tight(tmp_path, clock, notifier):
    """A store whose four groups allow 3 requests, then one a minute."""
    rates = {group: Rate(per_minute=1, burst=BURST) for group in DEFAULT_RATES}
    store = Store(
        tmp_path / "store.db", clock=clock, notifier=notifier,
        settings=StoreSettings(rate_limits=rates),
    )  # fmt: skip
    from storeserver import demo

    demo.seed(store, [KIOSK])
    with ServerThread(store) as server:
        yield server
    store.close()


def calls(store):
    """One request body per group, each a fresh request a kiosk could make."""
    with store.db.transaction() as conn:
        staff.add_staff(conn, store.clock, "S0099", "Rate Test", "246810")
    key, now = store.signing_key, int(store.clock.now().timestamp())
    return {
        "resolve": lambda: (
            "/v1/members/resolve",
            {"code": codes.issue(key, codes.CodeKind.MEMBER, "M0004", now)},
        ),
        "holds": lambda: (
            "/v1/redemptions",
            {"txn_id": str(uuid.uuid4()), "member_id": "M0004", "sku": "CPN-10", "points": 500},
        ),
        "spins": lambda: (
            "/v1/wheel/spins",
            {"txn_id": str(uuid.uuid4()), "member_id": "M0004", "wheel_id": "LUCKY"},
        ),
        "pin": lambda: ("/v1/staff/verify", {"badge": "not a badge", "pin": "1234"}),
    }


@pytest.mark.parametrize("group", sorted(DEFAULT_RATES))
def test_each_group_answers_429_with_retry_after_and_changes_nothing(tight, group):
    store = tight.store
    with store.db.transaction() as conn:  # no daily limit in the way of the spins
        conn.execute("UPDATE wheels SET daily_limit = 100")
    kiosk = enroll(tight, KIOSK)
    make = calls(store)[group]
    for _ in range(BURST):
        path, body = make()
        assert kiosk.post(path, body).status_code in (200, 403), group  # 403: the bad badge
    path, body = make()
    before = db_snapshot(store)
    resp = kiosk.post(path, body)
    assert resp.status_code == 429, resp.text
    assert resp.json()["error"] == "rate_limited" and set(resp.json()) == {"error", "message"}
    assert group in resp.json()["message"]
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert db_snapshot(store) == before
    # another kiosk's token is not slowed down by this one
    other = enroll(tight, "kiosk-07")
    path, body = make()
    assert other.post(path, body).status_code != 429
