"""Where the touch screen is and what it shows: ``Screen`` and the ``UiState`` snapshot.

Kept apart from the session (and light to import) so the app can draw its first frame
before the core's modules (crypto, HTTP, devices) are loaded.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kiosk.domain.catalog import Affordability
    from kiosk.domain.payloads import PayloadKind
    from kiosk.domain.receipts import Bilingual
    from kiosk.domain.wheel import Wheel
    from kiosk.services.door_alarms import DoorAlarm
    from kiosk.services.identify import Identified
    from kiosk.services.txn_steps import Progress, TxnResult


class Screen(enum.Enum):
    ATTRACT = "attract"
    MEMBER = "member"
    CATALOG = "catalog"
    CONFIRM = "confirm"
    PAYMENT = "payment"
    WHEEL = "wheel"
    RESULT = "result"
    STAFF = "staff"
    DIAGNOSTICS = "diagnostics"
    MAINTENANCE = "maintenance"


@dataclass(frozen=True)
class UiState:
    """One snapshot of everything a screen may show."""

    screen: Screen = Screen.ATTRACT
    online: bool = True
    member: Identified | None = None
    offer: tuple[Affordability, ...] = ()
    selected: Affordability | None = None
    compartment: int | None = None  # where the selected gift comes from
    busy: bool = False  # a transaction or lookup is running: taps are ignored
    progress: Progress | None = None
    result: TxnResult | None = None
    error: Bilingual | None = None  # shown on the current screen until the next action
    idle_left_s: float | None = None  # the on-screen logout countdown
    lookup_left_s: float | None = None  # a member lookup runs: its countdown
    routed_code: tuple[PayloadKind, str] | None = None  # a staff/technician code to hand on
    wheel: Wheel | None = None  # the synced wheel, or the member's (with spins_left)
    maintenance: Bilingual | None = None
    alarms: tuple[DoorAlarm, ...] = ()  # doors forced or left open: a staff alert on attract
    seq: int = field(default=0, compare=False)  # increases with every change
