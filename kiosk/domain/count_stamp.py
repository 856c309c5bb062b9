"""What a restock count says about the holds it had seen, so the store server can take off
the ones made after it (docs/restock.md, "A count cannot erase a redemption").

A count goes to the server through the outbox, seconds (or, offline, hours) after staff took
it. Meanwhile a member may redeem from the same compartment, and the server's hold takes one
from the stock as it was before the count. Applied as it stands, the count would erase that
gift. So every count carries its stamp:

- ``after_hold_seq``: the server's number of the last hold this kiosk had seen (from a hold
  or spin answer, or the catalog). Every later hold on the compartment had its gift inside
  when staff counted.
- ``open_holds``: holds the kiosk had made but not dispensed and not yet voided on the
  server (a void waiting for the network, an answer that never came). Their gift was inside
  too, and the void still to come gives one back.

The server sets the stock to the count less those holds (voided and expired ones excluded).
Offline redemptions are not holds: the outbox sends them in their order with the count.
Pure: the caller passes the transactions and the catalog's number.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kiosk.domain.transaction import Transaction, TxnState

__all__ = ["MAX_OPEN_HOLDS", "CountStamp", "count_stamp"]

MAX_OPEN_HOLDS = 20  # the server takes 50; a kiosk runs one transaction at a time
# States from which the engine voids the server's hold: the gift is still in the locker.
_UNSETTLED = frozenset(
    {
        TxnState.NEW,
        TxnState.HELD,
        TxnState.PAID,
        TxnState.DOOR_OPENING,
        TxnState.NEEDS_CHECK,
        TxnState.VOIDING,
    }
)


@dataclass(frozen=True)
class CountStamp:
    """The holds a count had seen, as the inventory event's payload carries them."""

    after_hold_seq: int
    open_holds: tuple[str, ...] = ()

    def payload(self) -> dict[str, Any]:
        return {"after_hold_seq": self.after_hold_seq, "open_holds": list(self.open_holds)}


def count_stamp(txns: Iterable[Transaction], catalog_hold_seq: int, number: int) -> CountStamp:
    """The stamp for a count of compartment ``number`` taken now."""
    txns = list(txns)
    seen = max([catalog_hold_seq, *(t.hold_seq for t in txns if t.hold_seq is not None)])
    open_holds = [
        t
        for t in txns
        if not t.offline
        and t.state in _UNSETTLED
        and not any(s is TxnState.DISPENSED for s, _ in t.history)
        and t.compartment in (None, number)  # a spin learns its compartment from the answer
    ]
    open_holds.sort(key=lambda t: t.history[0][1], reverse=True)  # the newest if too many
    return CountStamp(seen, tuple(t.txn_id for t in open_holds[:MAX_OPEN_HOLDS]))
