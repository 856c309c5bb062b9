"""``kiosk logs TXN``: one transaction's story, from the journal and from the system log.

The journal says what the kiosk decided (states with times, the hold, the void reason, the
receipts still waiting, a compartment flagged, events for the server); the system log says
what happened around it (``TXN=<id>`` lines, see kiosk/platform/logctx.py, and any line naming the
id). Technicians run it over SSH while the kiosk runs, so the journal is read without its
lock and without writing a byte, by the journal's own reader (kiosk/storage/journal_reader.py:
a half-written last frame is ignored, a read that races a compaction is tried again).

A journal in safe mode was moved to ``journal-corrupt-*`` folders: those are searched too,
as far as their frames decode.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from kiosk.commands.doctor_base import Runner, last_line, run_command
from kiosk.errors import JournalError, KioskError
from kiosk.storage import tables
from kiosk.storage.journal_reader import JournalView, quarantined, read_journal, safe_mode_reason

Record = dict[str, Any]
TXN_PATTERN = re.compile(r"[0-9a-fA-F-]{8,36}")


@dataclass
class Story:
    """What is known about one transaction."""

    txn_id: str
    record: Record | None = None
    found_in: Path | None = None  # the folder the record came from (a quarantine, maybe)
    receipts: dict[str, Record] = field(default_factory=dict)  # queue key -> queued receipt
    flags: dict[str, Record] = field(default_factory=dict)  # compartment -> needs-check flag
    events: dict[str, Record] = field(default_factory=dict)  # event id -> outbox record
    alerts: dict[str, Record] = field(default_factory=dict)  # event id -> refused event
    spend: Record | None = None  # an offline redemption's counted spend
    log_lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be read, and why

    @property
    def found(self) -> bool:
        return self.record is not None or bool(self.log_lines)


def _mine(txn_id: str, key: str, record: Mapping[str, Any]) -> bool:
    """Keys are "<txn_id>" or "<txn_id>:<what>"; flags and events name it inside."""
    payload = record.get("payload") if isinstance(record.get("payload"), dict) else {}
    return txn_id in (key.split(":")[0], record.get("txn_id"), payload.get("txn_id"))


def _fill(story: Story, view: JournalView) -> None:
    t, tid = view.tables, story.txn_id

    def rows(table: str) -> dict[str, Record]:
        return {k: r for k, r in t.get(table, {}).items() if isinstance(r, dict) and _mine(tid, k, r)}  # fmt: skip

    story.record, story.found_in = t.get(tables.TXN, {}).get(tid), view.folder
    story.receipts, story.flags = rows(tables.RECEIPT_QUEUE), rows(tables.COMPARTMENT_FLAGS)
    story.events, story.alerts = rows(tables.OUTBOX), rows(tables.SYNC_ALERTS)
    story.spend = t.get(tables.OFFLINE_SPENDS, {}).get(tid)


def _resolve(query: str, views: list[JournalView]) -> str:
    if not TXN_PATTERN.fullmatch(query):
        raise KioskError(
            f"{query!r} is not a transaction id: give the Txn printed on the receipt (a UUID), "
            "or at least its first 8 characters"
        )
    query = query.lower()
    ids = {tid for v in views for tid in v.tables.get(tables.TXN, {}) if tid.startswith(query)}
    if len(ids) > 1:
        raise KioskError(
            f"{query} matches {len(ids)} transactions ({', '.join(sorted(ids)[:5])}): "
            "give more characters"
        )
    return ids.pop() if ids else query


def transaction_story(
    state_dir: Path,
    query: str,
    *,
    runner: Runner = run_command,
    unit: str = "kiosk",
    system_log: bool = True,
) -> Story:
    """Everything the journal (live, then quarantined) and the system log know about a txn."""
    if not state_dir.is_dir():
        raise JournalError(
            f"no journal folder {state_dir}: check kiosk.state_dir in the config, or pass "
            "--state-dir"
        )
    views = [read_journal(state_dir)]
    if safe_mode_reason(state_dir) is not None:
        views[0].problem = "the journal is in safe mode: its records were moved aside"
    for folder in reversed(quarantined(state_dir)):
        views.append(read_journal(folder, tolerant=True))
    story = Story(_resolve(query, views))
    home = next((v for v in views if story.txn_id in v.tables.get(tables.TXN, {})), views[0])
    _fill(story, home)
    if home.problem:
        story.notes.append(f"journal read from {home.folder}: {home.problem}")
    if story.record is None:
        story.notes.append(
            "no journal record: finished transactions are kept 7 days, and an id the kiosk "
            "never made is not there"
        )
    if system_log:
        _system_log(story, runner, unit)
    return story


def _system_log(story: Story, runner: Runner, unit: str) -> None:
    argv = ["journalctl", "-o", "short-iso", "--no-pager", "-u", unit, "--grep", story.txn_id]
    history = (story.record or {}).get("history") or []
    if history and isinstance(history[0], list) and _number(history[0][-1]):
        argv += ["--since", f"@{int(history[0][1]) - 60}"]  # skip days of log before it began
    r = runner(argv)
    said = r.stdout + r.stderr
    if r.returncode == 127:
        story.notes.append("journalctl not found: no system log lines")
    elif "insufficient permissions" in said or "not seeing messages" in said:
        story.notes.append(
            "the system log is not readable as this user: run with sudo, or add the user to "
            "the systemd-journal group"
        )
    elif r.returncode != 0 and (r.returncode != 1 or r.stderr.strip()):  # 1 alone: no match
        story.notes.append(f"journalctl failed: {last_line(r)}")
    lines = [ln for ln in r.stdout.splitlines() if ln and ln != "-- No entries --"]
    story.log_lines = lines


# ---- the story as text ----------------------------------------------------------------------


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _when(at: Any, tz: dt.tzinfo) -> str:
    if not _number(at):
        return f"{at!r}"
    return dt.datetime.fromtimestamp(at, tz).isoformat(sep=" ", timespec="milliseconds")


def _facts(rec: Record) -> list[tuple[str, Any]]:
    ctx = rec.get("ctx") if isinstance(rec.get("ctx"), dict) else {}
    facts = [
        ("hold id", rec.get("hold_id")),
        ("payment", rec.get("payment_ref") or ctx.get("payment_id")),
        ("void reason", rec.get("void_reason")),
        ("capture refused", ctx.get("capture_refused")),
        ("points returned", ctx.get("points_returned") or None),
        ("cash refunded (cents)", ctx.get("cash_refunded_cents") or None),
        ("balance after hold", ctx.get("balance_held")),
        ("balance after capture", ctx.get("balance_final")),
        ("coupon", ctx.get("coupon_code") or _redacted_coupon(ctx)),
        ("receipt queued", "yes" if rec.get("receipt_queued") else None),
    ]
    prize = ctx.get("prize")
    if isinstance(prize, dict):
        facts.append(("prize", f"{prize.get('label_en')} (segment {prize.get('segment_idx')})"))
    return [(name, value) for name, value in facts if value is not None]


def _redacted_coupon(ctx: dict) -> str | None:
    """A done transaction keeps only the coupon code's last 4 characters and SHA-256."""
    last4, digest = ctx.get("coupon_code_last4"), ctx.get("coupon_code_sha256")
    if not last4 and not digest:
        return None
    return f"…{last4} (sha256 {str(digest)[:16]}…)"


def format_story(story: Story, tz: dt.tzinfo = dt.UTC) -> str:
    """The story as a technician reads it: record, states, facts, waiting work, log lines."""
    out = [f"transaction {story.txn_id}"]
    rec = story.record
    if rec is not None:
        ctx = rec.get("ctx") if isinstance(rec.get("ctx"), dict) else {}
        item = " / ".join(x for x in (ctx.get("item_zh"), ctx.get("item_en")) if x)
        where = "offline" if rec.get("offline") else "online"
        out.append(
            f"  {rec.get('kind')} ({where}), member {rec.get('member_id')} "
            f"({ctx.get('member_masked', '?')}), {rec.get('points')} points"
            + (f" + {rec['cash_cents'] / 100:.2f} cash" if rec.get("cash_cents") else "")
        )
        out.append(
            f"  item {rec.get('sku') or '-'} {item}, compartment {rec.get('compartment') or '-'}"
        )
        out.append(f"  now {rec.get('state')}")
        out.append(f"states ({getattr(tz, 'key', tz)}):")
        steps = [s for s in rec.get("history") or [] if isinstance(s, list) and len(s) == 2]
        for state, at in steps:
            after = f"+{at - steps[0][1]:.2f} s" if _number(at) and _number(steps[0][1]) else ""
            out.append(f"  {_when(at, tz)}  {state:<13} {after}".rstrip())
        facts = _facts(rec)
        if facts:
            out.append("facts:")
            out += [f"  {name}: {value}" for name, value in facts]
    for title, rows, show in (
        ("receipts waiting to print", story.receipts, _receipt_line),
        ("compartments flagged needs-check", story.flags, _flag_line),
        ("events for the store server (pending)", story.events, _event_line),
        ("events the store server refused", story.alerts, _alert_line),
    ):
        if rows:
            out.append(f"{title}:")
            out += [f"  {show(key, row, tz)}" for key, row in sorted(rows.items())]
    if story.spend:
        out.append(f"offline spend counted: {story.spend.get('points')} points on {story.spend.get('day')}")  # fmt: skip
    out.append(f"system log ({len(story.log_lines)} line(s)):")
    out += [f"  {line}" for line in story.log_lines]
    out += [f"note: {note}" for note in story.notes]
    return "\n".join(out)


def _receipt_line(key: str, r: Record, tz: dt.tzinfo) -> str:
    return f"{key.partition(':')[2] or key} queued {_when(r.get('queued_at'), tz)}: {r.get('reason')}"  # fmt: skip


def _flag_line(key: str, r: Record, tz: dt.tzinfo) -> str:
    return f"compartment {key} since {_when(r.get('at'), tz)}: {r.get('reason')}"


def _event_line(key: str, r: Record, tz: dt.tzinfo) -> str:
    return f"{r.get('kind')} {key} at {r.get('at')}"


def _alert_line(key: str, r: Record, tz: dt.tzinfo) -> str:
    return f"{r.get('kind')} {key}: {r.get('status')} ({r.get('reason')}): {r.get('message')}"


def zone(name: str) -> dt.tzinfo:
    """The store's zone for times; UTC if the name is not a zone."""
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return dt.UTC
