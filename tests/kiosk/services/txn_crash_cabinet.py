"""The crash campaign's model of the cabinet: what compartment 2 (the tote bags) really holds.

A confirmed door opening (DISPENSED journalled) is one gift out; a restock count is the counted
contents; a door the sensor never confirmed leaves the gift inside (its hold is voided).
Applied in the order the kiosk's clock put them in. The counts are the inventory events the
server received (after the drain every journalled count has reached it: the campaign checks
that none it saw journalled is missing). After every kill, recovery and
outbox drain, the store server's stock of the compartment must equal the model, and no gift
may have left a compartment the model counts empty (a member charged for an empty door).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kiosk.domain.transaction import Transaction, TxnState

from .txn_crash_restock import TAKES_FIRST, TOTES

REFILL = 3  # what the campaign puts in when a flow must take a tote before any count
TAKES_A_TOTE_FIRST = TAKES_FIRST | {"offline"}


class Cabinet:
    """The totes in compartment 2 as the cabinet holds them; the campaign keeps it across runs."""

    def __init__(self, totes: int = REFILL) -> None:
        self.totes = totes
        self.refills = self.counts = self.gifts = 0

    def prepare(self, flow: str, set_stock: Callable[[int], None]) -> None:
        """Before a run: refill an empty compartment for a flow that takes a tote first (the
        server's stock and the model at once, with nothing pending: the last run drained)."""
        if flow in TAKES_A_TOTE_FIRST and self.totes < 1:
            self.totes = REFILL
            set_stock(REFILL)
            self.refills += 1

    def follow(
        self, point: object, txns: Iterable[Transaction], counts: Iterable[Mapping[str, Any]]
    ) -> list[str]:
        """What happened in the run (the journal's transactions, the server's inventory
        events): violations if a gift left an empty compartment."""
        steps: list[tuple[float, int | None]] = []  # (when, count or None for one gift out)
        for event in counts:
            payload = json.loads(event["payload"])
            if event["kind"] == "inventory" and payload.get("compartment") == TOTES:
                at = dt.datetime.fromisoformat(event["at"]).timestamp()
                steps.append((at, int(payload["count"])))
        for txn in txns:
            opened = next((t for s, t in txn.history if s is TxnState.DISPENSED), None)
            if txn.compartment == TOTES and opened is not None:
                steps.append((opened, None))
        bad = []
        for _, count in sorted(steps, key=lambda s: s[0]):
            if count is not None:
                self.totes = count
                self.counts += 1
            elif self.totes == 0:
                bad.append(f"{point}: a tote was dispensed from compartment {TOTES}, empty")
            else:
                self.totes -= 1
                self.gifts += 1
        return bad

    def check(self, point: object, server_stock: int) -> list[str]:
        if server_stock != self.totes:
            return [
                f"{point}: the server counts {server_stock} in compartment {TOTES}, the cabinet "
                f"holds {self.totes}"
            ]
        return []
