"""``storeserver backup``: an online copy of the SQLite database that opens, holds the rows,
passes its integrity check and is readable by the owner only."""

from __future__ import annotations

import sqlite3
import stat
import threading
import types
from pathlib import Path

import pytest

from storeserver import cli_ops
from storeserver.cli import main

ROWS = 3000  # ~ 1.5 MB of meta rows: hundreds of pages, so the copy takes many steps


def _fill(store, n: int) -> None:
    with store.db.transaction() as conn:
        conn.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?)",
            ((f"filler-{i:05d}", "x" * 500) for i in range(n)),
        )


def _count(path: Path, where: str = "key LIKE 'filler-%'") -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM meta WHERE {where}").fetchone()[0]
    finally:
        conn.close()


def test_backup_while_another_thread_writes(store, tmp_path):
    _fill(store, ROWS)
    members = store.db.connection().execute("SELECT COUNT(*) FROM members").fetchone()[0]
    stop, started = threading.Event(), threading.Event()
    written = []

    def writer() -> None:
        while not stop.is_set():
            store.db.set_meta(f"live-{len(written):06d}", "y" * 200)
            written.append(1)
            if len(written) == 20:
                started.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert started.wait(30)
        before = len(written)
        result = cli_ops.backup(Path(store.db.path), tmp_path / "copy.db", step_pages=8)
    finally:
        stop.set()
        thread.join()
    out = tmp_path / "copy.db"
    assert result.path == out and result.size == out.stat().st_size and result.pages > 8
    assert _count(out) == ROWS  # every row committed before the copy began
    assert _count(out, "key LIKE 'live-%'") >= before
    conn = sqlite3.connect(out)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM members").fetchone()[0] == members > 0
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one file
    finally:
        conn.close()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_cli_refuses_to_overwrite_without_force(store, tmp_path, capsys):
    out = tmp_path / "copy.db"
    out.write_bytes(b"an older backup")
    with pytest.raises(SystemExit) as exc:
        main(["backup", "--db", store.db.path, "--out", str(out)])
    assert "--force" in str(exc.value)
    assert out.read_bytes() == b"an older backup"
    assert main(["backup", "--db", store.db.path, "--out", str(out), "--force"]) == 0
    printed = capsys.readouterr().out
    assert f"{out.stat().st_size} bytes" in printed and " s, integrity ok" in printed
    assert _count(out, "key = 'schema_version'") == 1
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_cli_refuses_a_missing_database(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["backup", "--db", str(tmp_path / "none.db"), "--out", str(tmp_path / "b.db")])
    assert "no database file" in str(exc.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing made, not even the source


def test_a_busy_store_is_copied_in_one_step(store, tmp_path, monkeypatch):
    """A copy restarted by a write from another connection after every step is taken in one
    step after MAX_RESTARTS restarts: it still finishes, holding every row."""
    _fill(store, ROWS)

    class WrittenBetweenSteps(sqlite3.Connection):
        def backup(self, target, *, pages=-1, progress=None, **kw):
            if pages == -1:
                return super().backup(target, pages=-1, **kw)

            def step(status: int, remaining: int, total: int) -> None:
                store.db.set_meta(f"between-steps-{remaining}", "w")  # the server's write
                if progress is not None:
                    progress(status, remaining, total)

            return super().backup(target, pages=pages, progress=step, **kw)

    def connect(path, **kw):
        factory = WrittenBetweenSteps if "mode=rw" in str(path) else sqlite3.Connection
        return sqlite3.connect(path, factory=factory, **kw)

    seam = types.SimpleNamespace(
        connect=connect, Error=sqlite3.Error, DatabaseError=sqlite3.DatabaseError
    )
    monkeypatch.setattr(cli_ops, "sqlite3", seam)
    result = cli_ops.backup(Path(store.db.path), tmp_path / "copy.db", step_pages=4)
    assert result.restarts == cli_ops.MAX_RESTARTS + 1
    out = tmp_path / "copy.db"
    assert _count(out) == ROWS
    assert _count(out, "key LIKE 'between-steps-%'") >= cli_ops.MAX_RESTARTS + 1
