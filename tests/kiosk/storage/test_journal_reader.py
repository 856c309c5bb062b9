"""One reader of the journal's files: the journal at open and the tools (``kiosk logs``,
``kiosk doctor``) replay a snapshot and its log by the same rules, so a journal the kiosk would
refuse is one the tools call corrupt, for the same reason, and a quarantined one still reads
as far as it fits."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.errors import JournalError
from kiosk.storage.journal import Journal
from kiosk.storage.journal_log import encode_frame
from kiosk.storage.journal_reader import (
    LOG_NAME,
    QUARANTINE_PREFIX,
    SNAPSHOT_NAME,
    quarantined,
    read_journal,
    replay,
    safe_mode_reason,
)


def put(seq: int, key: str, table: str = "t") -> dict:
    return {"seq": seq, "op": "put", "table": table, "key": key, "record": {"n": seq}}


def write(folder: Path, log: list[dict], snapshot: dict | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOG_NAME).write_bytes(b"".join(encode_frame(e) for e in log))
    if snapshot is not None:
        (folder / SNAPSHOT_NAME).write_bytes(encode_frame(snapshot))


# Journals that decode frame by frame but that no crash can leave behind.
UNEXPLAINED = {
    "gap": ([put(1, "a"), put(3, "c")], None, "entry 1 has sequence 3 where 2 was expected"),
    "unknown op": ([put(1, "a"), {"seq": 2, "op": "merge", "table": "t", "key": "b"}], None,
                   "entry 2 has an unknown operation"),
    "no key": ([put(1, "a"), {"seq": 2, "op": "put", "table": "t", "record": {}}], None,
               "entry 2 lacks a table or key"),
    "seq not a number": ([put(1, "a"), {**put(2, "b"), "seq": "2"}], None,
                         "sequence number '2' is not a whole number"),
    "snapshot format": ([], {"format": 2, "seq": 0, "tables": {}}, "not a format-1 journal snapshot"),
    "snapshot table": ([], {"format": 1, "seq": 1, "tables": {"t": []}},
                       "a snapshot table is not a JSON object"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(UNEXPLAINED))
def test_the_journal_and_the_tools_refuse_the_same_journal_for_the_same_reason(tmp_path, case):
    log, snapshot, why = UNEXPLAINED[case]
    write(tmp_path / "tools", log, snapshot)
    with pytest.raises(JournalError, match="does not read consistently") as info:
        read_journal(tmp_path / "tools")
    assert why in str(info.value)
    assert why in (read_journal(tmp_path / "tools", tolerant=True).problem or "")
    write(tmp_path / "kiosk", log, snapshot)
    with Journal.open(tmp_path / "kiosk") as journal:
        assert journal.safe_mode and why in (journal.safe_mode_reason or "")
    assert safe_mode_reason(tmp_path / "kiosk") == journal.safe_mode_reason
    (moved,) = quarantined(tmp_path / "kiosk")
    assert moved.name.startswith(QUARANTINE_PREFIX)


def test_a_tolerant_read_keeps_what_fits():
    entries = [put(1, "a"), {"seq": 2, "op": "merge", "table": "t", "key": "b"}, put(3, "c")]
    state = replay(None, entries, snapshot_path=Path("s"), log_path=Path("l"), tolerant=True)
    assert state.tables == {"t": {"a": {"n": 1}, "c": {"n": 3}}} and state.seq == 3
    assert state.problem == "entry 2 has an unknown operation"


def test_entries_the_snapshot_holds_are_skipped_and_deletes_empty_a_table():
    snapshot = {"format": 1, "seq": 2, "tables": {"t": {"a": {"n": 1}, "b": {"n": 2}}}}
    entries = [put(1, "a"), put(2, "b"), {"seq": 3, "op": "del", "table": "t", "key": "a"},
               {"seq": 4, "op": "del", "table": "t", "key": "b"}, put(5, "x", table="u")]  # fmt: skip
    state = replay(snapshot, entries, snapshot_path=Path("s"), log_path=Path("l"))
    assert state.tables == {"u": {"x": {"n": 5}}} and state.seq == 5 and state.problem is None


def test_the_tools_read_what_the_journal_holds(tmp_path):
    with Journal.open(tmp_path, compact_min_bytes=512) as journal:
        for n in range(40):
            journal.put("t", str(n % 7), {"n": n})
            if n % 5 == 0:
                journal.delete("t", str(n % 3))
        assert journal.stats().compactions > 0
        view = read_journal(tmp_path)
        assert view.tables == {name: journal.all(name) for name in journal.tables()}
        assert view.seq == journal.stats().seq
