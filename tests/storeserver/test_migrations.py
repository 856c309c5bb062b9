"""Schema migrations (storeserver/migrations): a file made before migrations is upgraded with
every row kept, the head snapshot equals the revisions run from empty, and files behind or
ahead of this release are refused with the command that fixes them."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from storeserver import cli, migrations
from storeserver.clock import ManualClock
from storeserver.db import Database
from storeserver.embedded import EmbeddedStoreServer
from storeserver.errors import DatabaseAhead, DatabaseBehind, MigrationFailed
from storeserver.migrations import runner
from storeserver.migrations.schema_shape import shape_of
from storeserver.store import Store

FIXTURE = Path(__file__).parent / "fixtures" / "store-0.1.0.db"  # made by make_store_0_1_0.py
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def old_db(tmp_path) -> Path:
    path = tmp_path / "store.db"
    shutil.copyfile(FIXTURE, path)
    os.chmod(path, 0o600)
    return path


def rows(path: Path) -> dict[str, list[dict]]:
    """Every row of every store table, by column name (order-free), in rowid order."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' AND name != 'alembic_version' ORDER BY name"
            )
        ]
        return {t: [dict(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY rowid")] for t in tables}  # fmt: skip
    finally:
        conn.close()


def revision_of(path: Path) -> str | None:
    conn = sqlite3.connect(path)
    try:
        return migrations.current(conn)
    finally:
        conn.close()


def master(path: Path) -> set[tuple[str, str, str, str]]:
    """sqlite_master: type, name, table and the SQL, without the whitespace around
    punctuation (Alembic writes its table over several lines)."""
    conn = sqlite3.connect(path)
    try:
        return {
            (t, n, tbl, re.sub(r"\s*([(),])\s*", r"\1", re.sub(r"\s+", " ", sql or "")))
            for t, n, tbl, sql in conn.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master"
            )
        }
    finally:
        conn.close()


def shape(path: Path):
    conn = sqlite3.connect(path)
    try:
        return shape_of(conn)
    finally:
        conn.close()


def test_the_revision_files_are_alembics_linear_history():
    scripts = runner.script_directory()
    ordered = [s.revision for s in reversed(list(scripts.walk_revisions()))]
    assert ordered == list(migrations.revisions())
    assert scripts.get_heads() == [migrations.head()]
    for script in scripts.walk_revisions():
        assert script.down_revision is None or isinstance(script.down_revision, str)


def test_every_revision_from_empty_gives_the_head_snapshot(tmp_path):
    upgraded, snapshot = tmp_path / "upgraded.db", tmp_path / "snapshot.db"
    sqlite3.connect(upgraded).close()
    runner.upgrade_to_head(str(upgraded))  # 0001 ... head, from nothing
    Database(snapshot, wal=False).close()  # schema.sql, stamped at head
    assert shape(upgraded) == shape(snapshot)  # columns in order, keys, foreign keys, indexes
    assert master(upgraded) == master(snapshot)
    assert revision_of(upgraded) == revision_of(snapshot) == migrations.head()


def test_a_file_from_before_migrations_keeps_every_row(old_db):
    before = rows(old_db)
    assert before["redemptions"] and before["spins"] and before["coupons"] and before["lots"]
    assert {r["state"] for r in before["redemptions"]} >= {"captured", "held", "voided"}
    assert revision_of(old_db) is None

    outcome = runner.migrate(str(old_db), say=lambda _: None)

    assert (outcome.before, outcome.after) == (None, migrations.head())
    assert rows(old_db) == before  # balances' lots, holds, spins, coupons, points changes
    assert revision_of(old_db) == migrations.head()
    store = Store(old_db, clock=ManualClock())
    try:
        conn = store.db.connection()
        for member in before["members"]:
            changes = [c for c in before["points_changes"] if c["member_id"] == member["id"]]
            expected = changes[-1]["balance_after"] if changes else 0
            assert store.ledger.balance(conn, member["id"], store.today()) == expected
    finally:
        store.close()


def test_the_backup_is_the_file_before_owner_only(old_db):
    before = rows(old_db)
    outcome = runner.migrate(str(old_db), say=lambda _: None)
    assert outcome.backup == Path(f"{old_db}.pre-{migrations.head()}.bak")
    assert stat.S_IMODE(os.stat(outcome.backup).st_mode) == 0o600
    assert rows(outcome.backup) == before and revision_of(outcome.backup) is None


def test_a_failed_migration_changes_nothing(old_db):
    conn = sqlite3.connect(old_db)  # an older file: no unique phones yet, and two share one
    conn.execute("DROP INDEX members_phone")
    conn.execute("DROP INDEX redemptions_seq")  # made again by 0001 before it stops
    conn.execute("UPDATE members SET phone = (SELECT phone FROM members WHERE id = 'M0001')")
    conn.commit()
    conn.close()
    shape_before, rows_before = shape(old_db), rows(old_db)
    with pytest.raises(MigrationFailed, match="share a phone number"):
        runner.migrate(str(old_db), say=lambda _: None)
    assert shape(old_db) == shape_before and rows(old_db) == rows_before
    assert revision_of(old_db) is None


def serve(path: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "storeserver.cli", "serve", "--db", str(path), "--demo",
         "--port", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def test_serve_refuses_a_file_behind_then_runs_once_migrated(old_db, capsys):
    proc = serve(old_db)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == DatabaseBehind.exit_code, err
    assert f"run 'storeserver migrate --db {old_db}'" in err
    assert revision_of(old_db) is None  # refused before touching it

    assert cli.main(["migrate", "--db", str(old_db)]) == 0
    said = capsys.readouterr().out
    assert f"none (made before migrations) -> {migrations.head()}" in said
    assert "applying 0001 baseline" in said and ".pre-" in said

    proc = serve(old_db)
    try:
        line = proc.stdout.readline()
        url = re.search(r"store server on (http://\S+)", line).group(1)
        assert requests.get(url + "/v1/health", timeout=10).status_code == 200
    finally:
        proc.terminate()
        proc.communicate(timeout=60)


def test_migrating_twice_says_up_to_date(old_db, capsys):
    assert cli.main(["migrate", "--db", str(old_db)]) == 0
    capsys.readouterr()
    backups = sorted(old_db.parent.glob("*.bak"))
    assert cli.main(["migrate", "--db", str(old_db)]) == 0
    assert capsys.readouterr().out == (
        f"database {old_db} is up to date (schema revision {migrations.head()})\n"
    )
    assert sorted(old_db.parent.glob("*.bak")) == backups  # no new backup


def test_a_file_from_a_newer_release_is_refused(tmp_path, capsys):
    path = tmp_path / "newer.db"
    Database(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.commit()
    conn.close()
    with pytest.raises(DatabaseAhead, match="newer than this release"):
        Database(path)
    assert cli.main(["migrate", "--db", str(path)]) == DatabaseAhead.exit_code
    assert "a newer release wrote it" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        cli.main(["tokens", "--db", str(path)])
    assert exited.value.code == DatabaseAhead.exit_code
    assert revision_of(path) == "9999" and not list(tmp_path.glob("*.bak"))


def test_other_commands_refuse_a_file_behind(old_db, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["tokens", "--db", str(old_db)])
    assert exited.value.code == DatabaseBehind.exit_code
    assert f"storeserver migrate --db {old_db}" in capsys.readouterr().err
    assert revision_of(old_db) is None


def test_a_new_file_is_stamped_at_head(tmp_path):
    Database(tmp_path / "new.db").close()
    assert revision_of(tmp_path / "new.db") == migrations.head()
    Database(tmp_path / "new.db").close()  # and opens again


def test_the_demo_store_server_makes_a_new_file_and_migrates_a_kept_old_one(tmp_path):
    fresh, kept = tmp_path / "fresh", tmp_path / "kept"
    kept.mkdir()
    shutil.copyfile(FIXTURE, kept / "store.db")
    for folder in (fresh, kept):
        server = EmbeddedStoreServer(folder, ["kiosk-01"])
        try:
            assert requests.get(server.url + "/v1/health", timeout=10).status_code == 200
        finally:
            server.stop()
        assert revision_of(folder / "store.db") == migrations.head()
    assert (kept / f"store.db.pre-{migrations.head()}.bak").exists()
