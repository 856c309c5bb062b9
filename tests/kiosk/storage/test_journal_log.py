"""The journal's file format: frames, torn tails, corruption, snapshots, one fsync per append."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kiosk.errors import JournalError
from kiosk.storage.journal_log import (
    JournalCorrupt,
    JournalLog,
    encode_frame,
    read_snapshot,
    scan_frames,
    write_snapshot,
)

P = Path("journal.log")
PAYLOADS = [{"seq": 1, "op": "put", "r": {"名": "茶"}}, {"seq": 2, "op": "del"}, {"seq": 3}]


def log_bytes() -> bytes:
    return b"".join(encode_frame(p) for p in PAYLOADS)


def test_frames_round_trip() -> None:
    result = scan_frames(log_bytes(), P)
    assert result.payloads == PAYLOADS
    assert result.good_bytes == len(log_bytes())
    assert result.torn_tail_bytes == 0


def test_frame_is_one_line_even_with_newlines_in_values() -> None:
    frame = encode_frame({"text": "a\nb\r\n", "u": "\u2028"})
    assert frame.count(b"\n") == 1 and frame.endswith(b"\n")


def test_non_json_record_is_a_journal_error() -> None:
    with pytest.raises(JournalError, match="JSON"):
        encode_frame({"x": float("nan")})
    with pytest.raises(JournalError):
        encode_frame({"x": object()})


def test_every_torn_tail_is_dropped_not_corruption() -> None:
    data = log_bytes()
    last = encode_frame(PAYLOADS[-1])
    start = len(data) - len(last)
    for cut in range(start + 1, len(data)):  # every prefix of the last frame but the whole one
        result = scan_frames(data[:cut], P)
        assert result.payloads == PAYLOADS[:-1], cut
        assert result.torn_tail_bytes == cut - start


def test_zero_filled_tail_after_power_loss_is_torn() -> None:
    result = scan_frames(log_bytes() + b"\0" * 512, P)
    assert result.payloads == PAYLOADS and result.torn_tail_bytes == 512


def test_flipped_byte_anywhere_in_a_complete_frame_is_corruption() -> None:
    data = log_bytes()
    for pos in range(len(data)):  # includes every byte of the last line
        bad = bytearray(data)
        bad[pos] ^= 0x01
        with pytest.raises(JournalCorrupt):
            scan_frames(bytes(bad), P)


def test_corruption_names_file_and_offset() -> None:
    data = bytearray(log_bytes())
    second = len(encode_frame(PAYLOADS[0]))
    data[second + 20] ^= 0xFF
    with pytest.raises(JournalCorrupt) as info:
        scan_frames(bytes(data), P)
    assert info.value.offset == second
    assert "journal.log" in str(info.value) and "technician" in str(info.value)


def test_open_cuts_the_torn_tail_so_new_appends_stay_readable(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"
    path.write_bytes(log_bytes()[:-5])
    lg = JournalLog.open(path)
    assert lg.replayed == PAYLOADS[:-1]
    lg.append(encode_frame({"seq": 3, "new": True}))
    lg.close()
    assert scan_frames(path.read_bytes(), path).payloads == [
        *PAYLOADS[:-1],
        {"seq": 3, "new": True},
    ]


def test_append_is_one_write_one_fsync_and_exact_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lg = JournalLog.open(tmp_path / "journal.log")
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    frame = encode_frame(PAYLOADS[0])
    lg.append(frame)
    assert len(calls) == 1
    assert (tmp_path / "journal.log").stat().st_size == len(frame) == lg.size
    lg.close()
    with pytest.raises(JournalError, match="closed"):
        lg.append(frame)


def test_failed_fsync_stops_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lg = JournalLog.open(tmp_path / "journal.log")

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(JournalError, match="not recorded"):
        lg.append(encode_frame(PAYLOADS[0]))
    monkeypatch.undo()
    with pytest.raises(JournalError, match="closed"):
        lg.append(encode_frame(PAYLOADS[0]))


def test_snapshot_round_trip_and_atomic_replace(tmp_path: Path) -> None:
    path = tmp_path / "journal.snapshot"
    assert read_snapshot(path) == (None, 0)
    size = write_snapshot(path, {"seq": 7, "tables": {"t": {"k": {"v": 1}}}})
    assert read_snapshot(path) == ({"seq": 7, "tables": {"t": {"k": {"v": 1}}}}, size)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.snapshot"]


@pytest.mark.parametrize("damage", ["truncate", "flip", "append", "empty"])
def test_damaged_snapshot_is_corruption(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "journal.snapshot"
    write_snapshot(path, {"seq": 1, "tables": {}})
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[:-3]
    elif damage == "flip":
        data[25] ^= 0x04
    elif damage == "append":
        data += b"x"
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt, match="snapshot"):
        read_snapshot(path)
