"""The staff screen's snapshot values (kiosk/services/staff_session.py sets them, staff_views.py
builds their texts and grid)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from kiosk.domain.receipts import Bilingual
from kiosk.services.restock import RestockSummary
from kiosk.services.sync_alerts import AlertNotice


class StaffStep(enum.Enum):
    IDLE = "idle"  # no badge routed here
    PIN = "pin"  # typing the PIN (and the lockout countdown)
    RESTOCK = "restock"  # signed in: the compartment grid
    DONE = "done"  # the restock ended: its summary is shown


class DoorPhase(enum.Enum):
    OPEN = "open"  # staff fill it; a count waits for the door to shut
    CLOSED = "closed"  # shut: enter the count


@dataclass(frozen=True)
class CompartmentView:
    """One tile of the grid: what the kiosk believes the compartment holds."""

    number: int
    sku: str | None
    name: Bilingual | None
    count: int
    needs_check: bool
    counted: bool  # counted in this session


@dataclass(frozen=True)
class StaffState:
    """One snapshot of the staff screen."""

    step: StaffStep = StaffStep.IDLE
    busy: bool = False
    pin_length: int = 0
    attempts_left: int | None = None
    locked_s: int | None = None  # the lockout countdown, whole seconds
    staff_name: str | None = None
    online: bool = True  # signed in against the store server (False: the kiosk's cache)
    message: Bilingual | None = None
    error: bool = False  # the message is a refusal
    compartments: tuple[CompartmentView, ...] = ()
    selected: int | None = None
    opened: int | None = None  # the compartment whose door was opened last
    door: DoorPhase | None = None  # ... and where that door stands
    queued: int = 0  # receipts waiting for the printer
    summary: RestockSummary | None = None
    idle_left_s: float | None = None
    alerts: tuple[AlertNotice, ...] = ()  # sync alerts waiting for staff (signed in only)
    alert_shown: str | None = None  # the alert_id in the message, waiting for "mark handled"
    seq: int = field(default=0, compare=False)
