"""The one durable whole-file writer: mode, replacement, and no half files on failure."""

from __future__ import annotations

import os

import pytest

from kiosk.storage import atomic
from kiosk.storage.atomic import write_file_atomic


def test_writes_with_the_mode_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        write_file_atomic(tmp_path / "server_key.pub", b"key\n", 0o644)
    finally:
        os.umask(old)
    path = tmp_path / "server_key.pub"
    assert path.read_bytes() == b"key\n" and (path.stat().st_mode & 0o777) == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "token"
    write_file_atomic(path, b"old\n")

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        write_file_atomic(path, b"new\n")
    assert path.read_bytes() == b"old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["token"]
