"""Sync alerts for staff: events the store server refused (an offline redemption that came back
as a conflict, a rejected inventory count) or kept failing on, told in words staff can act on.

The outbox parks such events in its "sync_alerts" table (kiosk/storage/outbox.py); the staff
screen shows them one at a time after sign-in, and a staff member who has dealt with one marks
it handled, which removes it from the kiosk (the store server keeps its own record of a
conflict). Kivy-free: the staff flow renders ``AlertNotice`` values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kiosk.domain.receipts import Bilingual
from kiosk.storage.outbox import SyncAlert

log = logging.getLogger(__name__)


class Texts(Protocol):
    def text(self, key: str, language: str, **fields: object) -> str: ...


@dataclass(frozen=True)
class AlertNotice:
    """One sync alert as staff read it."""

    alert_id: str
    status: str  # conflict | rejected | failed
    text: Bilingual


def mask_member(member_id: str) -> str:
    """M000123 -> M0***23: the screen stands in a shop, staff can still tell members apart."""
    if len(member_id) <= 4:
        return member_id[:1] + "*" * max(1, len(member_id) - 1)
    return member_id[:2] + "***" + member_id[-2:]


class SyncAlertDesk:
    """The staff side of the outbox's alerts: describe them, mark them handled."""

    def __init__(
        self,
        alerts: Callable[[], list[SyncAlert]],
        acknowledge: Callable[[str], bool],
        texts: Texts,
        items: Callable[[], Mapping[str, Any] | None] = lambda: None,
    ) -> None:
        self._alerts, self._acknowledge = alerts, acknowledge
        self.texts, self._items = texts, items

    def notices(self) -> tuple[AlertNotice, ...]:
        """Every alert waiting, oldest first; a journal that cannot be read shows none."""
        try:
            alerts = self._alerts()
        except Exception:  # the journal in safe mode: the technician sees why, staff go on
            log.exception("sync alerts could not be read")
            return ()
        return tuple(AlertNotice(a.alert_id, a.status, self.describe(a)) for a in alerts)

    def acknowledge(self, alert_id: str, staff_id: str | None) -> bool:
        """Staff dealt with it: remove it (False if it was gone already)."""
        done = self._acknowledge(alert_id)
        log.warning("sync alert %s marked handled by staff %s", alert_id, staff_id or "?")
        return done

    def describe(self, alert: SyncAlert) -> Bilingual:
        p = alert.event.payload
        reason = alert.reason or alert.message or "-"
        if alert.event.kind == "offline_redemption":
            member = mask_member(str(p.get("member_id", "?")))
            fields = dict(member=member, points=p.get("points", "?"), reason=reason,
                          n=p.get("compartment") or "-", txn=str(p.get("txn_id", ""))[:8])  # fmt: skip
            key = "alerts.offline_failed" if alert.status == "failed" else "alerts.offline_conflict"
            return self._say(key, self._item(p.get("sku")), **fields)
        key = "alerts.failed" if alert.status == "failed" else "alerts.rejected"
        kind = Bilingual(
            self.texts.text(f"alerts.kind_{alert.event.kind}", "zh"),
            self.texts.text(f"alerts.kind_{alert.event.kind}", "en"),
        )
        return self._say(key, kind, reason=reason, at=alert.event.at[:16].replace("T", " "))

    def _item(self, sku: object) -> Bilingual:
        item = (self._items() or {}).get(sku) if isinstance(sku, str) else None
        if item is not None:
            return Bilingual(item.name_zh, item.name_en)
        return Bilingual(str(sku), str(sku))

    def _say(self, key: str, name: Bilingual, **fields: object) -> Bilingual:
        return Bilingual(
            self.texts.text(key, "zh", what=name.zh, **fields),
            self.texts.text(key, "en", what=name.en, **fields),
        )
