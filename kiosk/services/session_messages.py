"""What the member reads from the member session (kiosk/services/session.py) besides a
transaction's own messages (kiosk/services/txn_messages.py): a fault, with a reference staff
can look up, and the session's own refusals (not enrolled, no free compartment, no wheel, a
lookup that timed out or was cancelled)."""

from __future__ import annotations

import logging

from kiosk.domain.receipts import Bilingual
from kiosk.errors import HardwareError, JournalError, KioskError, StoreServerError
from kiosk.i18n import bilingual

__all__ = [
    "LOOKUP_CANCELLED",
    "LOOKUP_TIMEOUT",
    "NOT_ENROLLED",
    "NO_COMPARTMENT",
    "NO_WHEEL",
    "fault_message",
]

log = logging.getLogger(__name__)


_ERROR_KINDS = ((JournalError, "journal"), (HardwareError, "device"),
                (StoreServerError, "server"))  # fmt: skip


def fault_message(exc: KioskError, txn_id: str | None = None) -> Bilingual:
    """What the member reads after an unexpected failure: ask staff, with a reference they
    can find in the log (``kiosk logs <ref>`` for a transaction); the detail is logged."""
    kind = next((word for cls, word in _ERROR_KINDS if isinstance(exc, cls)), "kiosk")
    ref = txn_id[:8] if txn_id else kind
    log.error("member shown a fault (reference %s, %s): %s", ref, type(exc).__name__, exc)
    return bilingual("session.error", ref=ref)


NOT_ENROLLED = bilingual("session.not_enrolled")
NO_COMPARTMENT = bilingual("session.no_compartment")
NO_WHEEL = bilingual("session.no_wheel")
LOOKUP_TIMEOUT = bilingual("session.lookup_timeout")
LOOKUP_CANCELLED = bilingual("session.lookup_cancelled")
