"""The lucky wheel as the kiosk knows it: the wheel it synced, its segments, a drawn prize.

Pure values, parsed once from the store server's JSON (kiosk/sync/parse.py) and passed as
they are to the session, the engine and the wheel screen. The fairness proof
(storeserver/wheel.py): each store day's seed is committed in advance by its SHA-256, which
the wheel info publishes (``commitments``); a spin's answer names the commitment of the seed
it was drawn with. The kiosk holds the commitments of the wheel it synced before a spin and
shows a result only when the answer carries the same one (:func:`unproven`); the receipt's
QR code opens the revealed seed (:func:`proof_url`), so the member can recompute the draw.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

from kiosk.domain.receipts import PrizeKind
from kiosk.domain.transaction import COMMITMENT_MISMATCH

__all__ = ["COMMITMENT_MISMATCH", "Prize", "PrizeKind", "Segment", "Wheel", "proof_url", "unproven"]

HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Segment:
    """One segment of the wheel, in the server's order (``idx``)."""

    idx: int
    label_zh: str
    label_en: str
    prize_kind: PrizeKind
    prize_points: int
    prize_sku: str | None
    weight: int
    odds: float  # the chance of a spin at this kiosk now (0.0 for a prize out of stock)
    stock: int | None = None  # None: unlimited

    def label(self, lang: str) -> str:
        return self.label_en if lang == "en" else self.label_zh


@dataclass(frozen=True)
class Wheel:
    """A wheel as the server publishes it to this kiosk (``GET /v1/wheels/{id}``).

    ``commitments``: ISO day -> SHA-256 of that day's seed (today's and tomorrow's).
    ``spins_left``: only in an answer asked for one member. ``seeds_url``: where the revealed
    seeds are read (``<public url>/v1/wheels/<id>/seeds/``), None when the server has no
    public URL."""

    id: str
    name_zh: str
    name_en: str
    cost_points: int
    daily_limit: int
    segments: tuple[Segment, ...]
    rules_zh: str = ""
    rules_en: str = ""
    commitments: Mapping[str, str] = field(default_factory=dict)
    spins_left: int | None = None
    seeds_url: str | None = None

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_zh

    def rules(self, lang: str) -> str:
        return self.rules_en if lang == "en" else self.rules_zh

    def commitment_on(self, day: dt.date) -> str | None:
        return self.commitments.get(day.isoformat())


@dataclass(frozen=True)
class Prize:
    """A wheel segment the server drew (``Redemption.prize``), as journalled with the spin."""

    wheel_id: str
    segment_idx: int
    kind: PrizeKind
    label_zh: str
    label_en: str
    points: int
    day: str  # ISO date of the draw's seed
    commitment: str
    coupon_value_cents: int | None = None


def unproven(prize: Prize, held: Mapping[str, str]) -> str | None:
    """Why the kiosk cannot vouch for ``prize``, or None when it can: the answer must carry
    the commitment the synced wheel published for the draw's day (``held``). The text is
    the void reason the server accepts (``commitment_mismatch: day=... held=... answered=...``)."""
    expected = held.get(prize.day)
    if expected is not None and expected == prize.commitment:
        return None
    return (
        f"{COMMITMENT_MISMATCH}: day={prize.day} held={expected or 'none'} "
        f"answered={prize.commitment[:64]}"
    )


def proof_url(seeds_url: str | None, day: str, txn_id: str) -> str | None:
    """The link a receipt's QR code carries: the draw's revealed seed and this spin (the
    server's ``GET /v1/wheels/{id}/seeds/{day}?txn=``), or None without a public URL."""
    if not seeds_url:
        return None
    query = urllib.parse.urlencode({"txn": txn_id})
    return f"{seeds_url}{urllib.parse.quote(day, safe='')}?{query}"
