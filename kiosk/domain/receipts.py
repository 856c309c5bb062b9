"""What goes on a printed receipt: one dataclass per kind, no printer commands here.

The printer driver turns these into ESC/POS bytes (``drivers/printer/templates.py``); the
core builds them from transaction records. Money is in cents, points are integers, times are
timezone-aware datetimes. Every receipt prints Chinese first, English second.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Receipt:
    """Common header and footer of every receipt."""

    store_name_zh: str
    store_name_en: str
    kiosk_id: str
    printed_at: dt.datetime
