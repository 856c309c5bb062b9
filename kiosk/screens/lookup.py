"""A member lookup's countdown, as the attract and member screens both show it: "looking you
up", the time left of the client's bound, a progress bar, and cancel (services/session.py)."""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.i18n import Translator
from kiosk.services.ui_state import UiState


@dataclass(frozen=True)
class LookupProgress:
    running: bool  # a member code is being looked up
    countdown: str  # the time left, as the screens write it ("0:02")
    done: float  # share of the time limit used, 0..1


def lookup_progress(state: UiState, limit_s: float, tr: Translator) -> LookupProgress:
    """What a screen shows of the running lookup (``limit_s``: the session's lookup bound)."""
    left = state.lookup_left_s
    if not state.busy or left is None:
        return LookupProgress(False, "", 0.0)
    done = min(1.0, max(0.0, 1 - left / max(limit_s, 0.001)))
    return LookupProgress(True, tr.countdown(left), done)
