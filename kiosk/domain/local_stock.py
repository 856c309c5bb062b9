"""The catalog as this kiosk's compartments stand now, not as the store server last said.

The server's catalog counts what it knew when the kiosk fetched it. Shown as it is, a
compartment emptied since would be offered again, its door opened onto nothing and the
member's points spent; one refilled offline would stay "out of stock". So the screens get the
last catalog with the changes it cannot know applied in their order:

- every gift this kiosk dispensed that the catalog cannot count yet: online, the server
  takes the stock when it grants the hold, so a dispense whose hold came after the fetch;
  offline, a dispense after the fetch;
- gifts dispensed offline whose upload the server has not answered yet (still in the outbox);
- counts staff entered that the server has not applied yet (``inventory`` events).

The sync worker reads the catalog again as soon as the server has applied or refused such
events. Pure: the caller passes the transactions and events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from kiosk.domain.catalog import Catalog, ItemKind
from kiosk.domain.transaction import Transaction, TxnState

__all__ = [
    "StockChange",
    "catalog_as_it_stands",
    "changes_from_events",
    "dispensed_since",
    "event_epoch",
    "local_changes",
    "with_local_stock",
]


@dataclass(frozen=True)
class StockChange:
    """One compartment change the server has not applied yet."""

    compartment: int
    dispensed: bool = False  # one gift out; else a count staff entered
    sku: str | None = None  # for a count: what the compartment now holds (None: emptied)
    count: int = 0
    at: float = 0.0  # when (epoch seconds): changes apply in this order
    txn_id: str | None = None  # the dispense's transaction


def _number(value: Any) -> int | None:
    return value if type(value) is int and value > 0 else None


def changes_from_events(
    events: Iterable[tuple[str, Mapping[str, Any], float]],
) -> list[StockChange]:
    """The stock changes among outbox events (kind, payload, at), oldest first; others skipped."""
    out = []
    for kind, payload, at in events:
        number = _number(payload.get("compartment"))
        if number is None:
            continue
        if kind == "offline_redemption":
            txn_id = payload.get("txn_id") if isinstance(payload.get("txn_id"), str) else None
            out.append(StockChange(number, dispensed=True, at=at, txn_id=txn_id))
        elif kind == "inventory":
            sku, count = payload.get("sku"), payload.get("count")
            if type(count) is int and count >= 0 and (sku is None or isinstance(sku, str)):
                out.append(StockChange(number, sku=sku, count=count, at=at))
    return out


def dispensed_since(txns: Iterable[Transaction], since: float) -> list[StockChange]:
    """One change per dispensed gift the server's stock did not count at ``since``: online
    when the hold (where the server takes the stock) came later, offline when the door did."""
    out = []
    for txn in txns:
        if txn.compartment is None:
            continue
        held = next((t for state, t in txn.history if state is TxnState.HELD), None)
        opened = next((t for state, t in txn.history if state is TxnState.DISPENSED), None)
        if opened is None:
            continue  # voided: the server gave the stock back; or not out yet
        counted_at = opened if txn.offline or held is None else held
        if counted_at > since:
            out.append(
                StockChange(txn.compartment, dispensed=True, at=counted_at, txn_id=txn.txn_id)
            )
    return out


def local_changes(
    dispensed: Iterable[StockChange], pending: Iterable[StockChange]
) -> list[StockChange]:
    """Both kinds together in time order, each dispense once (an offline gift dispensed after
    the fetch is also a pending upload)."""
    out = list(dispensed)
    seen = {c.txn_id for c in out if c.txn_id is not None}
    out += [c for c in pending if not (c.dispensed and c.txn_id in seen)]
    return sorted(out, key=lambda c: c.at)


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


def event_epoch(at: str) -> float:
    """An outbox event's ISO time as epoch seconds (0: unreadable, so it sorts first)."""
    try:
        return dt.datetime.fromisoformat(at).timestamp()
    except (TypeError, ValueError):
        return 0.0


def catalog_as_it_stands(
    catalog: Catalog,
    fetched_at: float,
    txns: Iterable[Transaction],
    pending: Iterable[tuple[str, Mapping[str, Any], str]],
) -> Catalog:
    """The catalog read at ``fetched_at`` with what it cannot know applied: the gifts these
    transactions dispensed since, and the ``pending`` outbox events (kind, payload, ISO at)."""
    waiting = changes_from_events((kind, payload, event_epoch(at)) for kind, payload, at in pending)
    return with_local_stock(catalog, local_changes(dispensed_since(txns, fetched_at), waiting))
