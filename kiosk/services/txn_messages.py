"""What the member reads when a transaction ends or is refused (kiosk/locale/txn.toml).

The transaction engine (kiosk/services/transactions.py) picks one of these for each result.
"""

from __future__ import annotations

from kiosk.domain.receipts import Bilingual
from kiosk.i18n import bilingual

# what the member reads (kiosk/locale/txn.toml)
MSG_TAKE_GIFT = bilingual("txn.take_gift")
MSG_ISSUED = bilingual("txn.issued")
MSG_ISSUE_UNCONFIRMED = bilingual("txn.issue_unconfirmed")
MSG_UNCONFIRMED = bilingual("txn.unconfirmed")
MSG_JAMMED = bilingual("txn.jammed")
MSG_PAY_CANCELLED = bilingual("txn.pay_cancelled")
MSG_PAY_EXPIRED = bilingual("txn.pay_expired")
MSG_CHECK = bilingual("txn.needs_check")
MSG_SPIN_UNSETTLED = bilingual("txn.spin_unsettled")
MSG_RESCAN = bilingual("txn.rescan")
# the server's refusals that a new scan of the member's code cures (session.py shows the
# member screen again, where a scan is taken)
RESCAN_CODES = frozenset({"member_session_required", "member_session_invalid"})
# the store server's refusal codes a member can act on; any other shows its code for staff
_REFUSALS = {
    code: bilingual(f"txn.refused.{code}")
    for code in ("insufficient_points", "out_of_stock", "daily_limit_reached", "price_changed")
}


def refusal_message(code: str) -> Bilingual:
    """What the member reads when the server refused a hold or spin with ``code``."""
    if code in RESCAN_CODES:
        return MSG_RESCAN
    return _REFUSALS.get(code) or bilingual("txn.refused.other", code=code)
