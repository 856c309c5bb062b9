"""The journal owner: durability, replay, recovery, safe mode, compaction, threads, cost."""

from __future__ import annotations

import os
import random
import threading
from pathlib import Path

import pytest
from tinydb import Query

from kiosk.errors import JournalError
from kiosk.storage import Journal
from kiosk.storage.journal import LOG_NAME, SAFE_MODE_NAME, SNAPSHOT_NAME
from tests.kiosk.storage.crash_helper import run_campaign


def record(i: int) -> dict[str, object]:
    return {"state": "HELD" if i % 2 else "DONE", "points": i, "note": "积分兑换"}


def files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (recursively) by relative path, lock file excluded."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "journal.lock"
    }


def test_round_trip_and_queries(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        assert not j.safe_mode and j.safe_mode_reason is None
        for i in range(5):
            j.put("txn", f"t{i}", record(i))
        assert j.get("txn", "t3") == record(3)
        assert j.get("txn", "nope") is None and j.all("other") == {}
        assert set(j.find("txn", Query().state == "HELD")) == {"t1", "t3"}
        assert set(j.find("txn", lambda r: r["points"] > 2)) == {"t3", "t4"}
        assert j.delete("txn", "t0") and not j.delete("txn", "t0")
        assert len(j) == 4 and j.tables() == ["txn"]


def test_reads_are_copies_and_records_are_json(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        mine = {"items": (1, 2)}
        j.put("t", "k", mine)
        mine["items"] = ()
        got = j.get("t", "k")
        assert got == {"items": [1, 2]}  # what replay would give back, not the caller's tuple
        got["items"].append(3)  # type: ignore[index]
        assert j.get("t", "k") == {"items": [1, 2]}


def test_reopen_replays_puts_and_deletes(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        for i in range(20):
            j.put("txn", f"t{i % 7}", record(i))
            if i % 3 == 0:
                j.delete("txn", f"t{(i + 1) % 7}")
        j.put("outbox", "o1", {"n": 1})
        expected = {t: j.all(t) for t in j.tables()}
    with Journal.open(tmp_path) as j:
        assert {t: j.all(t) for t in j.tables()} == expected
        j.put("txn", "later", {"n": 2})  # sequence continues after replay
    with Journal.open(tmp_path) as j:
        assert j.get("txn", "later") == {"n": 2}


def test_torn_tail_is_dropped_without_safe_mode(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        j.put("txn", "a", record(1))
        j.put("txn", "b", record(2))
    log = tmp_path / LOG_NAME
    log.write_bytes(log.read_bytes()[:-7])  # the last write was cut by a kill
    with Journal.open(tmp_path) as j:
        assert not j.safe_mode
        assert j.all("txn") == {"a": record(1)}
        j.put("txn", "c", record(3))
    with Journal.open(tmp_path) as j:
        assert j.all("txn") == {"a": record(1), "c": record(3)}


def corrupt_and_open(tmp_path: Path, name: str) -> tuple[Journal, dict[str, bytes]]:
    with Journal.open(tmp_path) as j:
        for i in range(6):
            j.put("txn", f"t{i}", record(i))
        if name == SNAPSHOT_NAME:
            j.compact()
            j.put("txn", "after", record(9))
    target = tmp_path / name
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x20
    target.write_bytes(bytes(data))
    before = files(tmp_path)
    return Journal.open(tmp_path), before


@pytest.mark.parametrize("name", [LOG_NAME, SNAPSHOT_NAME])
def test_corruption_moves_files_aside_and_enters_safe_mode(tmp_path: Path, name: str) -> None:
    j, before = corrupt_and_open(tmp_path, name)
    with j:
        assert j.safe_mode
        reason = j.safe_mode_reason or ""
        assert "corrupt" in reason and name in reason and SAFE_MODE_NAME in reason
        assert j.quarantine_dir is not None and str(j.quarantine_dir) in reason
        assert j.all("txn") == {}
        with pytest.raises(JournalError, match="safe mode"):
            j.put("txn", "x", {})
        with pytest.raises(JournalError, match="safe mode"):
            j.compact()
        # Nothing deleted: every byte that was there is in the quarantine folder, unchanged.
        moved = {p.name: p.read_bytes() for p in j.quarantine_dir.iterdir()}
        for rel, data in before.items():
            assert moved[rel] == data
        assert (tmp_path / SAFE_MODE_NAME).exists()


def test_safe_mode_is_sticky_until_a_technician_clears_it(tmp_path: Path) -> None:
    j, _ = corrupt_and_open(tmp_path, LOG_NAME)
    reason = j.safe_mode_reason
    j.close()
    with Journal.open(tmp_path) as j:  # a restart (e.g. systemd) must not end safe mode
        assert j.safe_mode and j.safe_mode_reason == reason
    assert Journal.clear_safe_mode(tmp_path)
    assert not Journal.clear_safe_mode(tmp_path)
    with Journal.open(tmp_path) as j:
        assert not j.safe_mode and j.all("txn") == {}
        j.put("txn", "fresh", {"n": 1})
    assert len(list(tmp_path.glob("journal-corrupt-*"))) == 1


def test_without_safe_mode_corruption_refuses_to_start_and_touches_nothing(
    tmp_path: Path,
) -> None:
    with Journal.open(tmp_path) as j:
        j.put("txn", "a", record(1))
        j.put("txn", "b", record(2))
    log = tmp_path / LOG_NAME
    data = bytearray(log.read_bytes())
    data[3] ^= 0x01
    log.write_bytes(bytes(data))
    before = files(tmp_path)
    with pytest.raises(JournalError, match="corrupt at byte 0"):
        Journal.open(tmp_path, safe_mode_on_corrupt=False)
    assert files(tmp_path) == before


def test_sequence_gap_is_corruption(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        j.put("txn", "a", record(1))
        j.compact()
        j.put("txn", "b", record(2))
    (tmp_path / SNAPSHOT_NAME).rename(tmp_path / "elsewhere")  # log now starts at seq 2
    with Journal.open(tmp_path) as j:
        assert j.safe_mode and "sequence 2 where 1 was expected" in (j.safe_mode_reason or "")


def test_compaction_keeps_state_and_shrinks_the_log(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        for i in range(200):
            j.put("txn", f"t{i % 10}", record(i))
        for i in range(5):
            j.delete("txn", f"t{i}")  # completed and synced: compacted away
        state = j.all("txn")
        big = (tmp_path / LOG_NAME).stat().st_size
        j.compact()
        assert (tmp_path / LOG_NAME).stat().st_size == 0 < big
        assert j.stats().log_entries == 0 and j.all("txn") == state
    with Journal.open(tmp_path) as j:
        assert j.all("txn") == state
        assert (tmp_path / SNAPSHOT_NAME).stat().st_size < big // 10


def test_automatic_compaction_when_log_outgrows_snapshot(tmp_path: Path) -> None:
    with Journal.open(tmp_path, compact_min_bytes=4096) as j:
        for i in range(300):
            j.put("txn", f"t{i % 5}", record(i))
        stats = j.stats()
        assert stats.compactions >= 3
        assert stats.log_bytes < max(4096, stats.snapshot_bytes) + 200
        state = j.all("txn")
    with Journal.open(tmp_path) as j:
        assert j.all("txn") == state


def test_crash_between_snapshot_and_log_reset_replays_correctly(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        for i in range(10):
            j.put("txn", f"t{i % 3}", record(i))
        j.delete("txn", "t0")
        old_log = (tmp_path / LOG_NAME).read_bytes()
        j.compact()
        state = j.all("txn")
    (tmp_path / LOG_NAME).write_bytes(old_log)  # as if killed before the log was emptied
    (tmp_path / (SNAPSHOT_NAME + ".tmp")).write_bytes(b"half a snapsh")  # and a stale temp
    with Journal.open(tmp_path) as j:
        assert not j.safe_mode and j.all("txn") == state
        j.put("txn", "new", {"n": 1})
        state["new"] = {"n": 1}
    with Journal.open(tmp_path) as j:
        assert not j.safe_mode and j.all("txn") == state
    assert not (tmp_path / (SNAPSHOT_NAME + ".tmp")).exists()


def test_concurrent_threads(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    with Journal.open(tmp_path, compact_min_bytes=8192) as j:

        def worker(name: str) -> None:
            try:
                for i in range(100):
                    j.put(name, f"k{i}", {"i": i})
                    if i % 4 == 0:
                        j.delete(name, f"k{i}")
                    j.find(name, lambda r: r["i"] > 50)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(f"t{n}",)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        expected = {f"k{i}": {"i": i} for i in range(100) if i % 4}
        assert all(j.all(f"t{n}") == expected for n in range(8))
        assert j.stats().seq == 8 * 125
    with Journal.open(tmp_path) as j:
        assert all(j.all(f"t{n}") == expected for n in range(8))


def test_second_owner_of_the_same_folder_is_refused(tmp_path: Path) -> None:
    with Journal.open(tmp_path), pytest.raises(JournalError, match="already open"):
        Journal.open(tmp_path)
    Journal.open(tmp_path).close()  # released on close


def test_oversized_record_is_refused_and_not_written(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        with pytest.raises(JournalError, match="4096-byte limit"):
            j.put("txn", "big", {"blob": "x" * 5000})
        with pytest.raises(JournalError, match="JSON"):
            j.put("txn", "bad", {"x": {1, 2}})
        assert j.get("txn", "big") is None
    assert (tmp_path / LOG_NAME).stat().st_size == 0


def count_step_cost(
    tmp_path: Path, live: int, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[int, int]]:
    """(fsync calls, bytes added to the folder's files) for a put-replace, put-new and delete."""
    folder = tmp_path / str(live)
    with Journal.open(folder, compact_min_bytes=1 << 30) as j:
        for i in range(live):
            j.put("txn", f"t{i}", record(i))
        j.compact()
        calls: list[int] = []
        real = os.fsync
        monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
        costs = []
        for step in (
            lambda: j.put("txn", "t1", record(10**6)),
            lambda: j.put("txn", "new", record(10**6)),
            lambda: j.delete("txn", "t2"),
        ):
            size = sum(len(v) for v in files(folder).values())
            calls.clear()
            step()
            costs.append((len(calls), sum(len(v) for v in files(folder).values()) - size))
        monkeypatch.undo()
    return costs


def test_one_fsync_and_bounded_bytes_per_step_independent_of_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = count_step_cost(tmp_path, 10, monkeypatch)
    large = count_step_cost(tmp_path, 3000, monkeypatch)
    assert [fsyncs for fsyncs, _ in small] == [1, 1, 1]
    assert [fsyncs for fsyncs, _ in large] == [1, 1, 1]
    # The same bytes with 300x the records, but for the sequence number's two more digits.
    assert all(0 <= big - few <= 2 for (_, few), (_, big) in zip(small, large, strict=True))
    assert all(0 < written <= 4096 for _, written in small)


def test_sigkill_campaign_fast(tmp_path: Path) -> None:
    result = run_campaign(tmp_path, kills=15, rng=random.Random(1234), max_run_s=0.25)
    assert result.violations == []
    assert result.kills == 15 and result.steps_acked > 15


@pytest.mark.slow
def test_sigkill_campaign_full(tmp_path: Path) -> None:
    result = run_campaign(tmp_path, kills=200, rng=random.Random(), max_run_s=0.5)
    assert result.violations == []
    assert result.kills == 200
