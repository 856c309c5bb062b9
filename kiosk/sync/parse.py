"""Reading what comes back from the store server, for the HTTP client (kiosk/sync/client.py).

A body of the expected shape becomes a value (:func:`redemption`, :func:`event_results`, ...) or
the checked dict; anything else raises :class:`ShapeError`, which the client turns into
:class:`BadResponse`. Error answers and failures to get an answer are kiosk/sync/refusals.py's.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from kiosk.domain.receipts import PrizeKind
from kiosk.domain.wheel import HEX64, Prize, Segment, Wheel
from kiosk.errors import BadResponse, StoreServerError
from kiosk.ports import (
    EventResult,
    Payment,
    PaymentStatus,
    Redemption,
    RedemptionState,
    StaffIdentity,
)

__all__ = [
    "BadResponse",
    "ShapeError",
    "catalog",
    "event_results",
    "keys",
    "member",
    "member_session",
    "payment",
    "prize",
    "redemption",
    "staff",
    "wheel",
]


E = TypeVar("E", bound=enum.Enum)


class ShapeError(StoreServerError):
    """The body does not have the expected shape (the client makes it a BadResponse)."""


def _obj(data: object) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ShapeError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _get(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], optional: bool = False):
    if key not in data or data[key] is None:
        if optional:
            return None
        raise ShapeError(f"missing {key!r}")
    value = data[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:  # JSON true is not a number of points
        raise ShapeError(f"{key!r} is not a {kinds[0].__name__}")
    if not isinstance(value, kinds):
        raise ShapeError(f"{key!r} is not a {kinds[0].__name__}")
    return value


def _enum(d: Mapping[str, Any], key: str, kind: type[E]) -> E:
    value = _get(d, key, str)
    try:
        return kind(value)
    except ValueError:
        raise ShapeError(
            f"{key!r} is {value[:40]!r}, not one of the kiosk's {kind.__name__}"
        ) from None


def redemption(data: object) -> Redemption:
    """A redemption (hold, capture, void, spin) as the server answers it; a spin's prize and
    a cash part are parsed too (a spin without a usable prize is garbage)."""
    d = _obj(data)
    kind = _get(d, "kind", str)
    pay = _get(d, "payment", dict, optional=True)
    raw_prize = _get(d, "prize", dict, optional=True)
    if kind == "spin" and raw_prize is None:
        raise ShapeError("a spin without its 'prize'")
    return Redemption(
        txn_id=_get(d, "txn_id", str),
        kind=kind,
        state=_enum(d, "state", RedemptionState),
        member_id=_get(d, "member_id", str),
        sku=_get(d, "sku", str, optional=True),
        compartment=_get(d, "compartment", int, optional=True),
        points=_get(d, "points", int),
        cash_cents=_get(d, "cash_cents", int),
        hold_expires_at=_get(d, "hold_expires_at", str, optional=True),
        void_reason=_get(d, "void_reason", str, optional=True),
        coupon_code=_get(d, "coupon_code", str, optional=True),
        payment=payment(pay) if pay is not None else None,
        prize=prize(raw_prize) if raw_prize is not None else None,
        balance=_get(d, "balance", int, optional=True),
        raw=d,
        hold_seq=_get(d, "hold_seq", int, optional=True),
    )


def payment(data: object) -> Payment:
    """The cash part of a hold."""
    d = _obj(data)
    return Payment(
        id=_get(d, "id", str),
        status=_enum(d, "status", PaymentStatus),
        amount_cents=_get(d, "amount_cents", int),
        pay_url=_get(d, "pay_url", str, optional=True),
    )


def prize(data: object) -> Prize:
    """A spin's draw: the segment, what it gives, and the day's seed commitment."""
    d = _obj(data)
    day = _day(_get(d, "day", str))
    return Prize(
        wheel_id=_get(d, "wheel_id", str),
        segment_idx=_count(d, "segment_idx"),
        kind=_enum(d, "kind", PrizeKind),
        label_zh=_get(d, "label_zh", str),
        label_en=_get(d, "label_en", str),
        points=_count(d, "points"),
        day=day,
        commitment=_hex64(d, "commitment"),
        coupon_value_cents=_get(d, "coupon_value_cents", int, optional=True),
    )


def _count(d: Mapping[str, Any], key: str) -> int:
    value = _get(d, key, int)
    if value < 0:
        raise ShapeError(f"{key!r} is negative")
    return value


def _day(text: str) -> str:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        raise ShapeError(f"day {text[:20]!r} is not a date") from None
    return text


def _hex64(d: Mapping[str, Any], key: str) -> str:
    value = _get(d, key, str)
    if not HEX64.fullmatch(value):
        raise ShapeError(f"{key!r} is not a SHA-256 in lowercase hex")
    return value


def keys(**kinds: type) -> Callable[[object], dict[str, Any]]:
    """A parser that checks an object has these keys with these types, and returns it."""

    def parse(data: object) -> dict[str, Any]:
        d = _obj(data)
        for key, kind in kinds.items():
            _get(d, key, kind)
        return d

    return parse


def catalog(data: object) -> dict[str, Any]:
    """``/v1/catalog``: a version and items, each with the fields the kiosk relies on."""
    d = keys(version=str, items=list)(data)
    for item in d["items"]:
        keys(sku=str, kind=str, points=int, cash_cents=int, compartments=list)(item)
    return d


def wheel(data: object) -> Wheel:
    """A wheel (``GET /v1/wheels/{id}``): cost, limit, segments with odds, rules, the seed
    commitments by day, and ``spins_left`` when asked for a member."""
    d = _obj(data)
    commitments = _get(d, "commitments", dict)
    for day in commitments:
        _hex64(commitments, _day(day))
    segments = tuple(_segment(s) for s in _get(d, "segments", list))
    if [s.idx for s in segments] != sorted({s.idx for s in segments}):
        raise ShapeError("segment indexes are not unique and in order")
    spins_left = _get(d, "spins_left", int, optional=True)
    return Wheel(
        id=_get(d, "id", str),
        name_zh=_get(d, "name_zh", str),
        name_en=_get(d, "name_en", str),
        cost_points=_count(d, "cost_points"),
        daily_limit=_count(d, "daily_limit"),
        segments=segments,
        rules_zh=_get(d, "rules_zh", str, optional=True) or "",
        rules_en=_get(d, "rules_en", str, optional=True) or "",
        commitments=dict(commitments),
        spins_left=max(0, spins_left) if spins_left is not None else None,
        seeds_url=_get(d, "seeds_url", str, optional=True),
    )


def _segment(data: object) -> Segment:
    d = _obj(data)
    odds = _get(d, "odds", (float, int))
    if not 0.0 <= odds <= 1.0:
        raise ShapeError(f"odds {odds!r} is not a probability")
    return Segment(
        idx=_count(d, "idx"),
        label_zh=_get(d, "label_zh", str),
        label_en=_get(d, "label_en", str),
        prize_kind=_enum(d, "prize_kind", PrizeKind),
        prize_points=_count(d, "prize_points"),
        prize_sku=_get(d, "prize_sku", str, optional=True),
        weight=_count(d, "weight"),
        odds=float(odds),
        stock=_get(d, "stock", int, optional=True),
    )


def member(data: object) -> dict[str, Any]:
    """A member view (checked in full by kiosk.domain.member_view); its ``member_session``
    becomes the session token (a str) or None."""
    d = keys(member_id=str, tier=str, balance=int)(data)
    for key in ("tier_threshold", "next_tier_threshold"):  # the tier bar counts between them
        _get(d, key, int, optional=True)
    for key in ("tier_en", "next_tier_en"):
        _get(d, key, str, optional=True)
    return {**d, "member_session": member_session(d)}


_SESSION_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")


def member_session(data: Mapping[str, Any]) -> str | None:
    """The member session token of a resolve answer (``member_session.token``), or None when
    the answer has none usable (an older server): holds then ask the member to scan again."""
    session = data.get("member_session")
    token = session.get("token") if isinstance(session, dict) else None
    if isinstance(token, str) and _SESSION_TOKEN.fullmatch(token):
        return token
    return None


def event_results(data: object) -> list[EventResult]:
    """The results of an event upload."""
    d = keys(results=list)(data)
    out = []
    for r in d["results"]:
        r = keys(event_id=str, status=str)(r)
        out.append(
            EventResult(
                r["event_id"],
                r["status"],
                _get(r, "reason", str, optional=True),
                _get(r, "message", str, optional=True),
            )
        )
    return out


_STAFF_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


def staff(data: object) -> StaffIdentity:
    """The staff member the server accepted a badge and PIN for."""
    d = keys(staff_id=str, name=str)(data)
    if not _STAFF_ID.fullmatch(d["staff_id"]):
        raise ShapeError(f"staff_id {d['staff_id'][:40]!r} is not a staff id")
    if not d["name"].strip() or len(d["name"]) > 64:
        raise ShapeError("name is empty or longer than 64 characters")
    return StaffIdentity(d["staff_id"], d["name"])
