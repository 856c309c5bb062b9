"""What the staff screen shows, built from what sign-in, restock, the printer and the alerts
desk answered: the compartment grid, the welcome, a refusal, the lockout, a finished restock's
summary, a reprint's result, the alert shown. Plain functions of their inputs, in both languages
from ``kiosk/locale/staff.toml`` (a refusal in its own words); the flow
(kiosk/services/staff_session.py: taps, worker results, time) puts them into ``StaffState``
snapshots (kiosk/services/staff_state.py). Unlike ``kiosk.i18n.bilingual``, these take the
flow's ``Translator``."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from kiosk.domain.catalog import CatalogItem
from kiosk.domain.receipts import Bilingual
from kiosk.domain.staff import StaffAuthError, StaffRejected
from kiosk.errors import KioskError
from kiosk.i18n import Translator, render
from kiosk.services.receipt_queue import ReprintResult
from kiosk.services.restock import CompartmentStock, RestockError, RestockSummary
from kiosk.services.staff_state import CompartmentView
from kiosk.services.sync_alerts import AlertNotice

__all__ = [
    "alert_message",
    "both_languages",
    "compartment_grid",
    "joined",
    "locked_message",
    "refusal_message",
    "reprint_message",
    "summary_message",
    "welcome_message",
]


def both_languages(texts: Translator, key: str, **fields: object) -> Bilingual:
    """A text of the catalog in both languages."""
    return Bilingual(texts.text(key, "zh", **fields), texts.text(key, "en", **fields))


def joined(parts: Sequence[Bilingual]) -> Bilingual:
    return Bilingual("\n".join(p.zh for p in parts), "\n".join(p.en for p in parts))


def compartment_grid(
    numbers: Sequence[int], stock: Mapping[int, CompartmentStock], flagged: Collection[int],
    items: Mapping[str, CatalogItem], counted: Collection[int],
) -> tuple[CompartmentView, ...]:  # fmt: skip
    """One tile per compartment: what the kiosk believes it holds, whether it needs a check,
    whether it was counted in this session."""
    out = []
    for n in numbers:
        s = stock.get(n, CompartmentStock(None, 0))
        item = items.get(s.sku) if s.sku else None
        name = Bilingual(item.name_zh, item.name_en) if item else None
        if name is None and s.sku:
            name = Bilingual(s.sku, s.sku)
        out.append(CompartmentView(n, s.sku, name, s.count, n in flagged, n in counted))
    return tuple(out)


def welcome_message(texts: Translator, name: str, online: bool, alerts: int) -> Bilingual:
    """Signed in (online or against the kiosk's cache), and how many alerts wait."""
    welcome = both_languages(
        texts, "staff.welcome" if online else "staff.welcome_offline", name=name
    )
    if alerts:
        welcome = joined([welcome, both_languages(texts, "staff.alerts_waiting", count=alerts)])
    return welcome


def locked_message(texts: Translator, seconds: float | None) -> Bilingual:
    """A lockout after too many wrong PINs: its countdown, or (None) until a manager unlocks."""
    if seconds is None:
        return both_languages(texts, "staff.locked_manager")
    return both_languages(texts, "staff.locked", countdown=texts.countdown(seconds))


def refusal_message(texts: Translator, exc: KioskError) -> Bilingual:
    """A refused sign-in or restock step in its own words (a wrong PIN with the attempts left),
    or a fault shown with its detail for the technician."""
    if isinstance(exc, StaffRejected) and exc.attempts_left is not None:
        return both_languages(texts, "staff.wrong_pin", left=exc.attempts_left)
    if isinstance(exc, StaffAuthError | RestockError):
        return render(exc)
    return both_languages(texts, "staff.error", detail=exc)


def summary_message(texts: Translator, summary: RestockSummary) -> Bilingual:
    """How a restock ended: timed out, the slip printed or queued, receipts reprinted, and the
    alerts staff must read before walking away."""
    parts = [both_languages(texts, "staff.timed_out")] if summary.ended == "timeout" else []
    if summary.slip_printed:
        parts.append(both_languages(texts, "staff.slip_printed"))
    elif summary.slip_queued:
        parts.append(both_languages(texts, "staff.slip_queued"))
    if summary.reprinted:
        parts.append(both_languages(texts, "staff.reprinted", printed=summary.reprinted))
    parts += summary.alerts
    return joined(parts or [both_languages(texts, "staff.finished")])


def reprint_message(texts: Translator, result: ReprintResult) -> Bilingual:
    if result.left:
        return both_languages(texts, "staff.reprint_stopped", printed=result.printed,
                         left=result.left, detail=result.error or "")  # fmt: skip
    return both_languages(texts, "staff.reprint_done", printed=result.printed)


def alert_message(texts: Translator, alerts: Sequence[AlertNotice]) -> Bilingual:
    """The oldest alert, "1 of n"."""
    first, count = alerts[0], len(alerts)
    return Bilingual(
        texts.text("staff.alert_of", "zh", i=1, count=count, text=first.text.zh),
        texts.text("staff.alert_of", "en", i=1, count=count, text=first.text.en),
    )
