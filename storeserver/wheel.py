"""Lucky wheel: segments, published odds, and a provably fair draw.

Fairness: each store day has a 32-byte server seed whose SHA-256 (the commitment) is published
in the wheel info before the day starts. A spin's outcome is

    u = first 8 bytes of HMAC-SHA256(seed, txn_id) as a big-endian integer
    r = u mod W, where W is the sum of the weights of the eligible segments
    the segment is the first eligible one (in index order) whose running weight sum exceeds r

Eligible segments are those with prize stock left (and, for a gift, a stocked compartment at
the spinning kiosk); each spin records them so anyone can recompute it once the seed is
revealed after its day (``GET /v1/wheels/{id}/seeds/{date}``). An out-of-stock prize leaves the
draw and the others keep their relative weights; nothing is ever swapped silently.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import sqlite3
from dataclasses import dataclass

from . import catalog
from .errors import Conflict, NotFound, shown

RULES_ZH = (
    "每次抽奖消耗积分；每位会员每天抽奖次数有限，每次抽奖都计入次数。抽奖结果一经抽出即为最终结果，"
    "仅当礼品因柜门故障未能取出时退回积分（不退回抽奖次数）。每个奖项的中奖概率等于其权重除以当时有库存的奖项权重之和；"
    "奖品抽完即退出抽奖，其余奖项按原权重比例分配，不会被暗中替换。每天的随机种子提前公布其 SHA-256 承诺值，"
    "次日公开种子，任何人都可以用 HMAC-SHA256(种子, 交易号) 复算每一次结果。"
)
RULES_EN = (
    "Each spin costs points; each member has a daily spin limit, and every spin counts. A spin's "
    "result is final: its points come back only when a gift prize could not be taken out because "
    "its door failed (the spin still counts). A prize's chance is its weight divided by "
    "the sum of the weights of the prizes in stock at the time of the spin; a prize that runs out leaves "
    "the draw and the others keep their relative weights, never a silent swap. Each day's seed is "
    "committed in advance by its SHA-256 and revealed the next day, so anyone can recompute every "
    "outcome from HMAC-SHA256(seed, txn_id)."
)
# A drawn spin is final: every spin counts against the daily limit, and its cost comes back only
# when a gift prize could not be dispensed (the door did not confirm). Otherwise a member could
# void every spin until the prize they want came up (docs/transactions.md, "The wheel's rule").
GIFT_NOT_DISPENSED = "gift_not_dispensed"


# A kiosk shows a draw only when the spin's answer carries the commitment of the wheel it
# synced; one that does not is voided with this reason, naming both (kiosk/domain/wheel.py).
COMMITMENT_MISMATCH = "commitment_mismatch"
_MISMATCH = re.compile(
    r"commitment_mismatch: day=(\d{4}-\d{2}-\d{2}) held=([0-9a-f]{64}|none) answered=(\S{1,64})"
)


def spin_void_refusal(
    prize_kind: str, compartment: int | None, reason: str, day: str = ""
) -> str | None:
    """Why a held spin (drawn on ``day``) may not be voided with ``reason``, or None when it
    may: a gift prize behind a door with a reason that says the gift was not dispensed, or
    any prize the kiosk could not prove (its answer's commitment was not the one it held)."""
    word = reason.split(":", 1)[0].strip()
    if word == COMMITMENT_MISMATCH:
        return _mismatch_refusal(reason, day)
    if prize_kind != "gift" or compartment is None:
        return (
            f"its {prize_kind} prize is the member's: a spin is final once drawn; "
            "capture it (only a gift whose door failed, or a draw the kiosk could not prove, "
            "may be voided)"
        )
    if word != GIFT_NOT_DISPENSED:
        return (
            f"a spin is voided only when its gift was not dispensed: send reason "
            f"'{GIFT_NOT_DISPENSED}: <what the door did>', or capture it"
        )
    return None


def _mismatch_refusal(reason: str, day: str) -> str | None:
    """A kiosk that held the commitment its answer carried has nothing to refuse: the void is
    for an answer that differed from the wheel the kiosk synced (altered on the way, or a
    seed that changed after it was published). The server cannot check more than that the
    claim is consistent; every such void is a staff alert and the spin still counts."""
    m = _MISMATCH.fullmatch(reason.strip())
    if m is None:
        return (
            f"send reason '{COMMITMENT_MISMATCH}: day=<YYYY-MM-DD> held=<sha256 hex|none> "
            "answered=<the commitment the answer carried>'"
        )
    if m.group(1) != day:
        return f"the spin was drawn on {day}, not {m.group(1)}"
    if m.group(2) == m.group(3):
        return "the commitment held is the one answered: the draw is proven, capture it"
    return None


@dataclass(frozen=True)
class Segment:
    idx: int
    label_zh: str
    label_en: str
    prize_kind: str
    prize_points: int
    prize_sku: str | None
    weight: int
    stock: int | None


def commitment(seed: bytes) -> str:
    return hashlib.sha256(seed).hexdigest()


def draw(seed: bytes, txn_id: str, eligible: list[tuple[int, int]]) -> int:
    """The segment index a spin lands on, from the day's seed and the eligible (idx, weight)."""
    if not eligible:
        raise ValueError("no eligible segment")
    total = sum(weight for _, weight in eligible)
    u = int.from_bytes(hmac.new(seed, txn_id.encode("utf-8"), hashlib.sha256).digest()[:8], "big")
    r = u % total
    running = 0
    for idx, weight in eligible:
        running += weight
        if r < running:
            return idx
    raise AssertionError("unreachable: r < total")


def segments(conn: sqlite3.Connection, wheel_id: str) -> list[Segment]:
    rows = conn.execute("SELECT * FROM wheel_segments WHERE wheel_id = ? ORDER BY idx", (wheel_id,))
    return [
        Segment(
            r["idx"],
            r["label_zh"],
            r["label_en"],
            r["prize_kind"],
            r["prize_points"],
            r["prize_sku"],
            r["weight"],
            r["stock"],
        )
        for r in rows
    ]


def wheel_row(conn: sqlite3.Connection, wheel_id: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM wheels WHERE id = ? AND active = 1", (wheel_id,)).fetchone()
    if row is None:
        raise NotFound("unknown_wheel", f"no active wheel {shown(wheel_id)}")
    return row


def eligible(
    conn: sqlite3.Connection, wheel_id: str, kiosk_id: str
) -> list[tuple[Segment, int | None]]:
    """Segments that can be won now at this kiosk, each with the compartment of a gift prize."""
    out: list[tuple[Segment, int | None]] = []
    for seg in segments(conn, wheel_id):
        if seg.stock is not None and seg.stock <= 0:
            continue
        compartment = None
        if seg.prize_kind == "gift":
            compartment = catalog.first_stocked_compartment(conn, kiosk_id, seg.prize_sku or "")
            if compartment is None:
                continue
        out.append((seg, compartment))
    return out


def seed_for(conn: sqlite3.Connection, wheel_id: str, day: dt.date) -> bytes:
    """The day's seed, made (and so committed) on first need."""
    row = conn.execute(
        "SELECT seed_hex FROM wheel_seeds WHERE wheel_id = ? AND day = ?",
        (wheel_id, day.isoformat()),
    ).fetchone()
    if row is not None:
        return bytes.fromhex(row["seed_hex"])
    seed = secrets.token_bytes(32)
    conn.execute(
        "INSERT INTO wheel_seeds(wheel_id, day, seed_hex, commitment) VALUES (?,?,?,?)",
        (wheel_id, day.isoformat(), seed.hex(), commitment(seed)),
    )
    return seed


def commit_ahead(
    conn: sqlite3.Connection, wheel_id: str, today: dt.date, days: int = 1
) -> dict[str, str]:
    """Make (and so commit to) the seeds of today and the next ``days`` days; their hashes."""
    return {
        day.isoformat(): commitment(seed_for(conn, wheel_id, day))
        for day in (today + dt.timedelta(days=n) for n in range(days + 1))
    }


def seeds_committed(conn: sqlite3.Connection, wheel_id: str, today: dt.date, days: int = 1) -> bool:
    """Whether the seeds ``commit_ahead`` would make exist already: the wheel's info is then
    a pure read (a poll writes only on the first poll of a day that needs a new seed)."""
    wanted = [(today + dt.timedelta(days=n)).isoformat() for n in range(days + 1)]
    row = conn.execute(
        f"SELECT COUNT(*) FROM wheel_seeds WHERE wheel_id = ? AND day IN ({','.join('?' * len(wanted))})",
        (wheel_id, *wanted),
    ).fetchone()
    return row[0] == len(wanted)


def info(conn: sqlite3.Connection, wheel_id: str, today: dt.date, kiosk_id: str) -> dict:
    """The wheel as published to a kiosk: odds are those of a spin at that kiosk right now."""
    wheel = wheel_row(conn, wheel_id)
    segs = segments(conn, wheel_id)
    winnable = {seg.idx for seg, _ in eligible(conn, wheel_id, kiosk_id)}
    total = sum(s.weight for s in segs if s.idx in winnable) or 1
    commitments = commit_ahead(conn, wheel_id, today)
    return {
        "id": wheel["id"],
        "name_zh": wheel["name_zh"],
        "name_en": wheel["name_en"],
        "cost_points": wheel["cost_points"],
        "daily_limit": wheel["daily_limit"],
        "segments": [
            {
                "idx": s.idx,
                "label_zh": s.label_zh,
                "label_en": s.label_en,
                "prize_kind": s.prize_kind,
                "prize_points": s.prize_points,
                "prize_sku": s.prize_sku,
                "weight": s.weight,
                "stock": s.stock,
                "odds": s.weight / total if s.idx in winnable else 0.0,
            }
            for s in segs
        ],
        "rules_zh": RULES_ZH,
        "rules_en": RULES_EN,
        "commitments": commitments,
        "algorithm": "HMAC-SHA256(seed, txn_id)[:8] big-endian mod total eligible weight",
    }


def revealed_seed(conn: sqlite3.Connection, wheel_id: str, day: dt.date, today: dt.date) -> dict:
    # a wheel switched off keeps its past seeds public: no active filter here
    if conn.execute("SELECT 1 FROM wheels WHERE id = ?", (wheel_id,)).fetchone() is None:
        raise NotFound("unknown_wheel", f"no wheel {shown(wheel_id)}")
    if day >= today:
        raise Conflict(
            "seed_not_revealed", f"the seed of {day.isoformat()} is revealed after that day"
        )
    row = conn.execute(
        "SELECT seed_hex, commitment FROM wheel_seeds WHERE wheel_id = ? AND day = ?",
        (wheel_id, day.isoformat()),
    ).fetchone()
    if row is None:
        raise NotFound("no_seed", f"wheel {wheel_id} had no seed on {day.isoformat()}")
    spins = [
        {
            "txn_id": r["txn_id"],
            "segment_idx": r["segment_idx"],
            "eligible": json.loads(r["eligible"]),
        }
        for r in conn.execute(
            "SELECT txn_id, segment_idx, eligible FROM spins WHERE wheel_id = ? AND day = ? ORDER BY at, txn_id",
            (wheel_id, day.isoformat()),
        )
    ]
    return {
        "wheel_id": wheel_id,
        "day": day.isoformat(),
        "seed": row["seed_hex"],
        "commitment": row["commitment"],
        "spins": spins,
    }


def take_prize_stock(conn: sqlite3.Connection, wheel_id: str, idx: int) -> None:
    conn.execute(
        "UPDATE wheel_segments SET stock = stock - 1 WHERE wheel_id = ? AND idx = ? AND stock IS NOT NULL",
        (wheel_id, idx),
    )


def return_prize_stock(conn: sqlite3.Connection, wheel_id: str, idx: int) -> None:
    conn.execute(
        "UPDATE wheel_segments SET stock = stock + 1 WHERE wheel_id = ? AND idx = ? AND stock IS NOT NULL",
        (wheel_id, idx),
    )
