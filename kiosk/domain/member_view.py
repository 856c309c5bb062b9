"""What the member screen shows, parsed strictly from the store server's answer, and its cache form.

Pure: no I/O. The server's ``/v1/members/resolve`` answer (storeserver/members.py ``view``)
becomes a frozen :class:`MemberView` here, or :class:`UnusableAnswer`; the catalog is
kiosk.domain.catalog, which shares the strict field readers below. The same parser reads
the offline cache back: a cache record is the server's shape (trimmed to fit a journal record)
plus the time it was fetched, so there is one validation path, not two.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from kiosk.domain.text import Text
from kiosk.errors import JournalError, KioskError, Unreachable

__all__ = [
    "CACHE_RECORD_MAX_BYTES",
    "ExpiringPoints",
    "MemberView",
    "PointsChange",
    "Tier",
    "UnusableAnswer",
    "describe_age",
    "mask_name",
    "mask_phone",
    "parse_member_view",
    "view_from_record",
    "view_to_record",
]

# The journal refuses frames over 4096 bytes (kiosk.storage.journal.MAX_RECORD_BYTES); the frame
# also holds a header, seq, table and key (~130 bytes with a 32-character member id).
CACHE_RECORD_MAX_BYTES = 3800
RECORD_FORMAT = 1
MAX_NAME_STARS = 15  # bounds the record size; the length of a long name is not worth showing
_MAX_INT = 10**12
_MAX_LIST = 500
_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
# Control characters cannot be shown; lone surrogates cannot even be encoded (json allows them).
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class UnusableAnswer(Unreachable):
    """The store server answered something the kiosk cannot use (wrong shape, impossible values).

    An ``Unreachable``, as the client's BadResponse: the kiosk cannot know what the server meant,
    so it acts as if offline.
    """


class _Bad(KioskError):
    """Internal: one field is wrong; becomes UnusableAnswer or JournalError with context."""


# ---- values ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tier:
    """A membership tier: stable code ("silver"), names, lifetime-points threshold if known."""

    code: str
    name_zh: str
    name_en: str
    threshold: int | None = None


@dataclass(frozen=True)
class ExpiringPoints:
    """Points of the member that expire at the end of ``expires_on`` unless spent."""

    points: int
    expires_on: dt.date


@dataclass(frozen=True)
class PointsChange:
    """One line of the points history: when, how many (+/-), why (the server's kind word)."""

    at: dt.datetime  # timezone-aware
    delta: int
    reason: str  # "purchase", "redeem", "expire", "refund", ...
    balance_after: int | None


@dataclass(frozen=True)
class MemberView:
    """One member as the kiosk shows them; ``fetched_at`` is Unix seconds of the server answer."""

    member_id: str
    name_masked: str
    phone_masked: str | None
    tier: Tier
    next_tier: Tier | None
    points_to_next_tier: int  # lifetime points still needed; 0 at the top tier
    tier_progress: float  # 0.0 .. 1.0 towards next_tier; 1.0 at the top tier
    lifetime_points: int
    balance: int
    expiring: tuple[ExpiringPoints, ...]  # soonest first
    stored_value_cents: int
    recent_changes: tuple[PointsChange, ...]  # newest first, as the server sends them
    fetched_at: float


def with_balance(view: MemberView, balance: int) -> MemberView:
    """``view`` after a transaction left the member with ``balance`` (the server's figure, or
    the offline spend). Points spent come out of the soonest-expiring lots first, as the
    store server spends them, so "expiring soon" does not list points already spent. Points
    won (a balance above the view's) are added; their expiry is known at the next scan."""
    spent = view.balance - balance
    expiring = list(view.expiring)
    while spent > 0 and expiring:
        lot = expiring[0]
        if lot.points > spent:
            expiring[0] = ExpiringPoints(lot.points - spent, lot.expires_on)
            break
        spent -= lot.points
        expiring.pop(0)
    return replace(view, balance=balance, expiring=tuple(expiring))


# ---- for the screen -------------------------------------------------------------------------------


def mask_name(name: str) -> str:
    """张三丰 -> 张**, 张* -> 张*: the first character only; idempotent, as the server's mask."""
    name = name.strip() or "*"
    return name[0] + "*" * min(MAX_NAME_STARS, max(1, len(name) - 1))


def mask_phone(phone: str) -> str:
    """13812345678 -> 138****5678; shorter numbers keep only the last 4; idempotent."""
    phone = phone.strip()
    if len(phone) >= 11:
        return phone[:3] + "****" + phone[-4:]
    if len(phone) >= 8:
        return "****" + phone[-4:]
    return "****"


def describe_age(age_s: float) -> Text:
    """How old a cached view is, for the screen, e.g. "3 小时前" / "3 h ago" (member.toml)."""
    minutes = int(max(0.0, age_s) // 60)
    if minutes < 1:
        return Text("member.age.just_now")
    if minutes < 60:
        return Text("member.age.minutes", {"n": minutes})
    if minutes < 48 * 60:
        return Text("member.age.hours", {"n": minutes // 60})
    return Text("member.age.days", {"n": minutes // 1440})


# ---- parsing --------------------------------------------------------------------------------------


def _obj(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{what} is not a JSON object")
    return value


def _opt_int(d: Mapping[str, Any], key: str, lo: int = 0) -> int | None:
    value = d.get(key)
    if value is None:
        return None
    if type(value) is not int or not lo <= value <= _MAX_INT:  # type(): JSON true is not 1
        raise _Bad(f"{key!r} is not a whole number from {lo} to {_MAX_INT}")
    return value


def _int(d: Mapping[str, Any], key: str, lo: int = 0) -> int:
    value = _opt_int(d, key, lo)
    if value is None:
        raise _Bad(f"{key!r} is missing")
    return value


def _opt_str(d: Mapping[str, Any], key: str, max_len: int) -> str | None:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= max_len or _UNPRINTABLE.search(value):
        raise _Bad(f"{key!r} is not a printable text of 1 to {max_len} characters")
    return value


def _str(d: Mapping[str, Any], key: str, max_len: int) -> str:
    value = _opt_str(d, key, max_len)
    if value is None:
        raise _Bad(f"{key!r} is missing")
    return value


def _list(d: Mapping[str, Any], key: str) -> list[Any]:
    value = d.get(key)
    if not isinstance(value, list) or len(value) > _MAX_LIST:
        raise _Bad(f"{key!r} is not a list of at most {_MAX_LIST} entries")
    return value


def _tier(d: Mapping[str, Any], prefix: str) -> Tier:
    code = _str(d, prefix, 32)
    return Tier(
        code=code,
        name_zh=_str(d, f"{prefix}_zh", 64),
        # The reference server sends no English name yet: the code reads well enough.
        name_en=_opt_str(d, f"{prefix}_en", 64) or code.replace("_", " ").title(),
        threshold=_opt_int(d, f"{prefix}_threshold"),
    )


def _progress(lifetime: int, needed: int, tier: Tier, nxt: Tier | None) -> float:
    if nxt is None:
        return 1.0
    if tier.threshold is not None and nxt.threshold is not None and nxt.threshold > tier.threshold:
        done = (lifetime - tier.threshold) / (nxt.threshold - tier.threshold)
    else:  # without thresholds: the way from zero lifetime points to the next tier
        done = lifetime / (lifetime + needed) if lifetime + needed else 0.0
    return min(1.0, max(0.0, done))


def _expiring(entry: object) -> ExpiringPoints:
    e = _obj(entry, "an expiring entry")
    text = _str(e, "expires_on", 10)
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise _Bad(f"expires_on {text!r} is not a date (YYYY-MM-DD)") from None
    return ExpiringPoints(_int(e, "points", 1), day)


def _change(entry: object) -> PointsChange:
    c = _obj(entry, "a recent change")
    text = _str(c, "at", 48)  # the longest isoformat() is 42 characters
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _Bad(f"'at' {text!r} is not an ISO 8601 time") from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise _Bad(f"'at' {text!r} has no time zone")
    reason = _opt_str(c, "kind", 32) or _str(c, "reason", 32)
    return PointsChange(at, _int(c, "delta", -_MAX_INT), reason, _opt_int(c, "balance_after"))


def _view(data: object, fetched_at: object) -> MemberView:
    if isinstance(fetched_at, bool) or not isinstance(fetched_at, int | float):
        raise _Bad("fetched_at is not a number")
    if not math.isfinite(fetched_at) or fetched_at < 0:
        raise _Bad("fetched_at is not a finite time")
    d = _obj(data, "the member view")
    member_id = _str(d, "member_id", 32)
    if not _ID.fullmatch(member_id):
        raise _Bad(f"member_id {member_id!r} is not a member id")
    # Mask again whatever came: the kiosk screen faces the shop, whatever the server does.
    name = _opt_str(d, "name_masked", 64) or _str(d, "name", 64)
    phone = _opt_str(d, "phone_masked", 32) or _opt_str(d, "phone", 32)
    tier = _tier(d, "tier")
    nxt = _tier(d, "next_tier") if d.get("next_tier") is not None else None
    lifetime = _int(d, "lifetime_points")
    needed = _int(d, "points_to_next_tier") if nxt else 0
    return MemberView(
        member_id=member_id,
        name_masked=mask_name(name),
        phone_masked=mask_phone(phone) if phone is not None else None,
        tier=tier,
        next_tier=nxt,
        points_to_next_tier=needed,
        tier_progress=_progress(lifetime, needed, tier, nxt),
        lifetime_points=lifetime,
        balance=_int(d, "balance"),
        expiring=tuple(
            sorted(map(_expiring, _list(d, "expiring")), key=lambda e: (e.expires_on, e.points))
        ),
        stored_value_cents=_int(d, "stored_value_cents"),
        recent_changes=tuple(map(_change, _list(d, "recent_changes"))),
        fetched_at=float(fetched_at),
    )


def parse_member_view(data: object, fetched_at: float) -> MemberView:
    """The server's member view as a :class:`MemberView`; anything unusable is UnusableAnswer."""
    try:
        return _view(data, fetched_at)
    except (_Bad, RecursionError) as exc:
        raise UnusableAnswer(
            f"store server sent a member view the kiosk cannot use ({exc}): check that the "
            "store server and the kiosk software are compatible versions"
        ) from None


# ---- cache record ---------------------------------------------------------------------------------


def _tier_shape(prefix: str, tier: Tier) -> dict[str, Any]:
    return {
        prefix: tier.code,
        f"{prefix}_zh": tier.name_zh,
        f"{prefix}_en": tier.name_en,
        f"{prefix}_threshold": tier.threshold,
    }


def _change_shape(c: PointsChange) -> dict[str, Any]:
    return {
        "at": c.at.isoformat(),
        "delta": c.delta,
        "kind": c.reason,
        "balance_after": c.balance_after,
    }


def _server_shape(
    view: MemberView, expiring: Sequence[ExpiringPoints], changes: Sequence[PointsChange]
) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "member_id": view.member_id,
        "name_masked": view.name_masked,
        "phone_masked": view.phone_masked,
        **_tier_shape("tier", view.tier),
        "lifetime_points": view.lifetime_points,
        "points_to_next_tier": view.points_to_next_tier,
        "balance": view.balance,
        "expiring": [
            {"points": e.points, "expires_on": e.expires_on.isoformat()} for e in expiring
        ],
        "stored_value_cents": view.stored_value_cents,
        "recent_changes": [_change_shape(c) for c in changes],
    }
    if view.next_tier is not None:
        shape.update(_tier_shape("next_tier", view.next_tier))
    return shape


def _size(record: Mapping[str, Any]) -> int:
    # As the journal encodes it: compact, UTF-8 (a Chinese character is 3 bytes).
    return len(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode())


def view_to_record(view: MemberView, max_bytes: int = CACHE_RECORD_MAX_BYTES) -> dict[str, Any]:
    """The view as a journal record of at most ``max_bytes``.

    What does not fit goes, least useful first: the oldest history lines, then (only with
    hundreds of lots) the latest-expiring entries. The texts of a parsed view are bounded, so
    the rest always fits a journal record.
    """
    expiring, changes = list(view.expiring), list(view.recent_changes)
    while True:
        record = {
            "format": RECORD_FORMAT,
            "fetched_at": view.fetched_at,
            "view": _server_shape(view, expiring, changes),
        }
        if _size(record) <= max_bytes:
            return record
        if changes:
            changes.pop()  # newest first: the last one is the oldest
        elif expiring:
            expiring.pop()  # soonest first: the last one matters least today
        else:
            raise JournalError(
                f"member view of {view.member_id} does not fit a {max_bytes}-byte cache "
                "record: it is shown but not cached for offline use (check the kiosk version)"
            )


def view_from_record(record: object) -> MemberView:
    """A view back from :func:`view_to_record`'s record; JournalError if it is unreadable."""
    try:
        r = _obj(record, "the cache record")
        if r.get("format") != RECORD_FORMAT:
            raise _Bad(f"record format is not {RECORD_FORMAT}")
        return _view(r.get("view"), r.get("fetched_at"))
    except (_Bad, RecursionError) as exc:
        raise JournalError(
            f"cached member view is unreadable ({exc}): it is dropped; nothing to do unless "
            "this repeats (then check the kiosk software version)"
        ) from None
