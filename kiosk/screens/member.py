"""Member: the masked name, tier and progress to the next tier, points balance, points expiring
soon, stored value, the last points changes, the way to the catalog and the wheel, sign out,
and the idle countdown. A cached view (the store server unreachable) is marked with its age.
A code scanned here is looked up with the same countdown and cancel as on the attract screen.
"""

from __future__ import annotations

import logging

from kivy.properties import BooleanProperty, NumericProperty, StringProperty

from kiosk.domain.member_view import MemberView, PointsChange
from kiosk.screens.base import KioskScreen, load_kv
from kiosk.screens.lookup import lookup_progress
from kiosk.services.ui_state import UiState

log = logging.getLogger(__name__)

load_kv(__file__)

HISTORY_LINES = 5  # what fits beside the balance; the server sends up to 10
EXPIRING_LINES = 3
_REASONS = {"purchase", "redeem", "spin", "wheel_prize", "expire", "refund", "registration",
            "referral", "topup"}  # fmt: skip


class MemberScreen(KioskScreen):
    """Renders ``state.member`` (an ``Identified``); taps go to the session."""

    looking_up = BooleanProperty(False)  # a code scanned here is being looked up
    lookup_countdown = StringProperty("")
    lookup_done = NumericProperty(0.0)

    def refresh(self, state: UiState) -> None:
        ids, tr = self.ids, self.tr
        lookup = lookup_progress(state, self.session.lookup_timeout_s, tr)
        self.looking_up = lookup.running
        if lookup.running:
            self.lookup_countdown, self.lookup_done = lookup.countdown, lookup.done
        who = state.member
        left = state.idle_left_s if state.idle_left_s is not None else self.session.idle_logout_s
        ids.idle.text = tr("common.idle_logout", countdown=tr.countdown(left))
        ids.error.text = "" if state.error is None else (
            state.error.zh if self.lang == "zh" else state.error.en
        )  # fmt: skip
        if who is None:  # between a logout and the attract screen: nothing personal stays up
            for name in ("name", "tier", "next_tier", "balance", "expiring", "stored_value",
                         "history", "offline"):  # fmt: skip
                ids[name].text = ""
            ids.tier_progress.value = 0
            return
        view = who.view
        ids.name.text = tr("member.greeting", name=view.name_masked)
        self._tier(view)
        ids.balance.text = tr.points(view.balance)
        ids.expiring.text = self._expiring(view)
        ids.stored_value.text = tr("member.stored_value", amount=tr.money(view.stored_value_cents))
        ids.history.text = self._history(view.recent_changes)
        if not who.online:
            age = who.age_text.zh if self.lang == "zh" else who.age_text.en
            ids.offline.text = tr("member.cached", age=age)
        elif not state.online:
            ids.offline.text = tr("common.offline_banner")
        else:
            ids.offline.text = ""
        online = state.online and who.online
        ids.wheel_button.disabled = not online  # no wheel spins while offline
        ids.wheel_button.text = tr("member.wheel" if online else "member.wheel_offline")

    def _tier(self, view: MemberView) -> None:
        ids, tr, zh = self.ids, self.tr, self.lang == "zh"
        ids.tier.text = tr("member.tier", tier=view.tier.name_zh if zh else view.tier.name_en)
        ids.tier_progress.value = view.tier_progress
        nxt = view.next_tier
        if nxt is None:
            ids.next_tier.text = tr("member.top_tier")
        else:
            ids.next_tier.text = tr(
                "member.next_tier",
                points=tr.points(view.points_to_next_tier),
                tier=nxt.name_zh if zh else nxt.name_en,
            )

    def _expiring(self, view: MemberView) -> str:
        tr = self.tr
        if not view.expiring:
            return tr("member.expiring_none")
        return "\n".join(
            tr("member.expiring_line", points=tr.points(e.points), date=tr.date(e.expires_on))
            for e in view.expiring[:EXPIRING_LINES]
        )

    def _history(self, changes: tuple[PointsChange, ...]) -> str:
        tr = self.tr
        if not changes:
            return tr("member.history_none")
        lines = []
        for change in changes[:HISTORY_LINES]:
            reason = change.reason if change.reason in _REASONS else "other"
            sign = "+" if change.delta > 0 else "-" if change.delta < 0 else ""
            lines.append(
                tr(
                    "member.history_line",
                    date=tr.date(change.at.astimezone().date()),  # the kiosk's local day
                    delta=sign + tr.points(abs(change.delta)),
                    reason=tr(f"member.reason.{reason}"),
                )
            )
        return "\n".join(lines)

    # ---- taps ------------------------------------------------------------------------------
    def open_catalog(self) -> None:
        self.session.show_catalog()

    def open_wheel(self) -> None:
        self.session.show_wheel()

    def sign_out(self) -> None:
        self.session.logout()

    def cancel_lookup(self) -> None:
        self.session.cancel_lookup()

    def toggle_language(self) -> None:
        self.session.touch()
        self.tr.toggle()
