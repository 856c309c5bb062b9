"""The gift catalog, parsed strictly from the store server's answer, and what a member can take.

Pure: no I/O. ``/v1/catalog`` becomes a frozen :class:`Catalog`, or :class:`UnusableAnswer`
(the kiosk then acts as if offline); :func:`affordable` sorts its items for one member.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

# The strict field readers are the member view's: one set of rules for the server's answers.
from kiosk.domain.member_view import (
    MemberView,
    UnusableAnswer,
    _Bad,
    _int,
    _list,
    _obj,
    _opt_int,
    _str,
)
from kiosk.domain.offline import OfflineLimits
from kiosk.domain.staff_lockout import LockoutPolicy

__all__ = [
    "Affordability",
    "Catalog",
    "CatalogItem",
    "ItemKind",
    "Unaffordable",
    "affordable",
    "parse_catalog",
]


class ItemKind(enum.Enum):
    GIFT = "gift"  # from a locker compartment of this kiosk
    COUPON = "coupon"  # printed; stock is store-wide (None: unlimited)


@dataclass(frozen=True)
class CatalogItem:
    """A catalog entry; ``stock`` is this kiosk's compartments for gifts, None = unlimited."""

    sku: str
    name_zh: str
    name_en: str
    kind: ItemKind
    points: int
    cash_cents: int
    stock: int | None
    compartments: tuple[tuple[int, int], ...] = ()  # (number, stock)
    coupon_value_cents: int = 0  # what a coupon item is worth at the till
    picture: str | None = None  # the store server's picture file name (kiosk's picture cache)


@dataclass(frozen=True)
class Catalog:
    """The catalog's version and items; ``skipped`` are SKUs of kinds this kiosk does not know."""

    version: str
    items: tuple[CatalogItem, ...]
    skipped: tuple[str, ...] = ()
    hold_seq: int = 0  # the server's latest hold for this kiosk when it answered (0: none)
    # the store's offline caps (the server checks uploads against them); None: an older
    # server, the kiosk's [offline] config applies
    offline: OfflineLimits | None = None
    # the server's wrong-PIN rule, applied to staff PINs checked offline; None: an older
    # server, the kiosk keeps the rule it had (kiosk/domain/staff_lockout.py's)
    staff_lockout: LockoutPolicy | None = None


class Unaffordable(enum.Enum):
    """Why an item cannot be taken now; when several apply, the first listed here is given."""

    OUT_OF_STOCK = "out_of_stock"
    NOT_ENOUGH_POINTS = "not_enough_points"
    CASH_NEEDS_ONLINE = "cash_needs_online"


@dataclass(frozen=True)
class Affordability:
    """An item and whether the member can take it now; ``points_short`` > 0 only for points."""

    item: CatalogItem
    reason: Unaffordable | None
    points_short: int = 0

    @property
    def ok(self) -> bool:
        return self.reason is None


# ---- parsing --------------------------------------------------------------------------------------


def _item(data: object) -> CatalogItem | str:
    d = _obj(data, "a catalog item")
    sku = _str(d, "sku", 64)
    try:
        kind = ItemKind(d.get("kind"))
    except ValueError:
        return sku  # a kind from a newer server: skipped, not fatal for the whole catalog
    compartments = tuple(
        (_int(c, "number"), _int(c, "stock"))
        for c in (_obj(c, "a compartment") for c in _list(d, "compartments"))
    )
    stock = _opt_int(d, "stock")
    if stock is None and kind is ItemKind.GIFT:
        stock = sum(n for _, n in compartments)
    return CatalogItem(
        sku=sku,
        name_zh=_str(d, "name_zh", 128),
        name_en=_str(d, "name_en", 128),
        kind=kind,
        points=_int(d, "points"),
        cash_cents=_int(d, "cash_cents"),
        stock=stock,
        compartments=compartments,
        coupon_value_cents=_opt_int(d, "coupon_value_cents") or 0,
        picture=d.get("picture") if isinstance(d.get("picture"), str) else None,
    )


def _offline(data: object) -> OfflineLimits | None:
    if data is None:
        return None
    d = _obj(data, "the offline limits")
    return OfflineLimits(
        per_member_daily_points=_int(d, "per_member_daily_points"),
        per_kiosk_daily_points=_int(d, "per_kiosk_daily_points"),
        max_offline_hours=_int(d, "max_offline_hours"),
    )


def _staff_lockout(data: object) -> LockoutPolicy | None:
    if data is None:
        return None
    d = _obj(data, "the staff lockout rule")
    steps = d.get("lock_steps_s")
    if not isinstance(steps, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in steps
    ):
        raise _Bad(f"lock_steps_s must be a list of positive whole seconds, got {steps!r}")
    policy = LockoutPolicy(
        in_a_row=_int(d, "in_a_row"), lock_steps_s=tuple(float(s) for s in steps),
        daily_cap=_int(d, "daily_cap"),
    )  # fmt: skip
    if policy.in_a_row < 1 or policy.daily_cap < 1:
        raise _Bad(f"the staff lockout rule must allow at least one wrong PIN, got {d!r}")
    return policy


def parse_catalog(data: object) -> Catalog:
    """``/v1/catalog`` as a :class:`Catalog`; anything unusable is UnusableAnswer."""
    try:
        d = _obj(data, "the catalog")
        parsed = [_item(i) for i in _list(d, "items")]
        return Catalog(
            version=_str(d, "version", 64),
            items=tuple(i for i in parsed if isinstance(i, CatalogItem)),
            skipped=tuple(i for i in parsed if isinstance(i, str)),
            hold_seq=_opt_int(d, "hold_seq") or 0,  # absent from servers before it existed
            offline=_offline(d.get("offline")),
            staff_lockout=_staff_lockout(d.get("staff_lockout")),
        )
    except (_Bad, RecursionError) as exc:
        raise UnusableAnswer(
            f"store server sent a catalog the kiosk cannot use ({exc}): check that the store "
            "server and the kiosk software are compatible versions"
        ) from None


# ---- affordability --------------------------------------------------------------------------------


def affordable(
    view: MemberView, items: Iterable[CatalogItem], *, online: bool
) -> list[Affordability]:
    """Each item with why it cannot be taken now (None if it can); affordable ones first.

    Within each group the catalog order is kept. Offline, a cash part cannot be paid. The
    offline floor limits (kiosk.domain.offline) are the redemption's check, not this one.
    """
    out = []
    for item in items:
        short = max(0, item.points - view.balance)
        if item.stock is not None and item.stock <= 0:
            out.append(Affordability(item, Unaffordable.OUT_OF_STOCK))
        elif short:
            out.append(Affordability(item, Unaffordable.NOT_ENOUGH_POINTS, short))
        elif item.cash_cents and not online:
            out.append(Affordability(item, Unaffordable.CASH_NEEDS_ONLINE))
        else:
            out.append(Affordability(item, None))
    return sorted(out, key=lambda a: not a.ok)
