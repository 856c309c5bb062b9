"""The catalog as this kiosk's compartments stand now, not as the store server last said.

The server's catalog counts what it knows. What the kiosk did since, and the server has not
heard of yet, is still in the outbox: gifts handed out offline (``offline_redemption``) and
counts staff entered (``inventory``). Shown without them, a compartment emptied offline
would be offered again, its door opened onto nothing and the member's points spent; one
refilled offline would stay "out of stock". So the screens get the server's catalog with the
pending events applied in their order. Once the server has applied an event it leaves the
outbox and the next catalog carries it. Pure: the caller passes the events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from kiosk.domain.catalog import Catalog, ItemKind

__all__ = ["StockChange", "changes_from_events", "with_local_stock"]


@dataclass(frozen=True)
class StockChange:
    """One compartment change the server has not applied yet."""

    compartment: int
    dispensed: bool = False  # one gift out (offline); else a count staff entered
    sku: str | None = None  # for a count: what the compartment now holds (None: emptied)
    count: int = 0


def _number(value: Any) -> int | None:
    return value if type(value) is int and value > 0 else None


def changes_from_events(events: Iterable[tuple[str, Mapping[str, Any]]]) -> list[StockChange]:
    """The stock changes among outbox events (kind, payload), oldest first; others skipped."""
    out = []
    for kind, payload in events:
        number = _number(payload.get("compartment"))
        if number is None:
            continue
        if kind == "offline_redemption":
            out.append(StockChange(number, dispensed=True))
        elif kind == "inventory":
            sku, count = payload.get("sku"), payload.get("count")
            if type(count) is int and count >= 0 and (sku is None or isinstance(sku, str)):
                out.append(StockChange(number, sku=sku, count=count))
    return out


def with_local_stock(catalog: Catalog, changes: Iterable[StockChange]) -> Catalog:
    """``catalog`` with ``changes`` applied to its gifts' compartments (same version)."""
    changes = list(changes)
    if not changes:
        return catalog
    held: dict[int, tuple[str | None, int]] = {}  # compartment -> (sku, stock)
    for item in catalog.items:
        if item.kind is ItemKind.GIFT:
            for number, stock in item.compartments:
                held[number] = (item.sku, stock)
    for change in changes:
        if change.dispensed:
            sku, stock = held.get(change.compartment, (None, 0))
            held[change.compartment] = (sku, max(0, stock - 1))
        else:
            held[change.compartment] = (change.sku, change.count)
    items = []
    for item in catalog.items:
        if item.kind is not ItemKind.GIFT:
            items.append(item)
            continue
        compartments = tuple(sorted((n, s) for n, (sku, s) in held.items() if sku == item.sku))
        items.append(
            replace(item, compartments=compartments, stock=sum(s for _, s in compartments))
        )
    return replace(catalog, items=tuple(items))
