"""The lucky wheel: odds, published seeds, spins."""

from __future__ import annotations

import datetime as dt
import sqlite3
from urllib.parse import quote

from fastapi import APIRouter, Depends

from .. import member_sessions, spins, wheel
from ..models import SpinRequest
from ..store import Store
from .auth import Allowed, Caller, Public, Role, store_of
from .members import MemberSession
from .throttle import RATE_LIMITED, RateLimited

router = APIRouter()


@router.get("/v1/wheels/{wheel_id}", tags=["wheel"])
def get_wheel(
    wheel_id: str,
    member_id: str | None = None,
    member_session: MemberSession = None,
    caller: Caller = Depends(Allowed(Role.KIOSK)),
    store: Store = Depends(store_of),
) -> dict:
    """Segments, odds at this kiosk now, rules, today's and tomorrow's seed commitments, and
    `seeds_url` (where phones read the revealed seeds: the store's public URL, null without
    one); with `member_id` (and that member's session) also the member's `spins_left` today."""
    today = store.today()
    with store.db.reading() as conn:  # a poll reads: no write lock, nothing written
        if member_id is not None:  # refused before the info commits any seed: nothing changes
            member_sessions.require(conn, store.clock.now(), caller.name, member_id, member_session)
        out = (
            wheel.info(conn, wheel_id, today, caller.name)
            if _seeded(conn, wheel_id, today)
            else None
        )
    if out is None:  # the first poll of a day commits its seeds: a write, once
        with store.db.transaction() as conn:
            out = wheel.info(conn, wheel_id, today, caller.name)
    base = store.pay_base_url()  # the public URL (simulated payments: the listening one)
    out["seeds_url"] = f"{base}/v1/wheels/{quote(wheel_id, safe='')}/seeds/" if base else None
    if member_id is not None:
        out["spins_left"] = spins.spins_left(
            store.redemptions, caller.name, member_id, wheel_id, member_session
        )
    return out


def _seeded(conn: sqlite3.Connection, wheel_id: str, today: dt.date) -> bool:
    wheel.wheel_row(conn, wheel_id)  # 404 unknown_wheel before anything else
    return wheel.seeds_committed(conn, wheel_id, today)


@router.get("/v1/wheels/{wheel_id}/seeds/{day}", tags=["wheel"])
def get_seed(
    wheel_id: str,
    day: dt.date,
    txn: str | None = None,
    _: Caller = Depends(Public()),
    store: Store = Depends(store_of),
) -> dict:
    """A past day's seed and every spin of that day, so anyone can recompute the outcomes;
    with `txn` (a wheel receipt's QR code) only that spin."""
    with store.db.reading() as conn:
        out = wheel.revealed_seed(conn, wheel_id, day, store.today())
    if txn is not None:
        out["spins"] = [s for s in out["spins"] if s["txn_id"] == txn]
    return out


@router.post("/v1/wheel/spins", tags=["wheel"], responses=RATE_LIMITED)
def spin(
    body: SpinRequest,
    member_session: MemberSession = None,
    caller: Caller = Depends(Allowed(Role.KIOSK)),
    store: Store = Depends(store_of),
    _rate: None = Depends(RateLimited("spins")),
) -> dict:
    """Spin for the member whose code this kiosk resolved (`X-Member-Session`): hold the cost,
    draw the prize, reserve its stock. Idempotent by txn_id.

    Every spin counts against the member's daily limit, whatever becomes of it. `cost_points`
    (the cost the member was shown) refuses another cost before the draw (409
    `price_changed`).
    """
    return spins.spin(
        store.redemptions, caller.name, body.model_dump(exclude_none=True), member_session
    )
