"""Database files made by earlier versions of the schema: refused until migrated."""

from __future__ import annotations

import sqlite3

import pytest

from storeserver.db import Database
from storeserver.errors import DatabaseBehind
from storeserver.migrations.runner import migrate

OLD_KIOSK_EVENTS = """
CREATE TABLE kiosk_events (
    event_id TEXT PRIMARY KEY,
    kiosk_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    payload TEXT NOT NULL,
    result TEXT NOT NULL,
    received_at TEXT NOT NULL
);
INSERT INTO kiosk_events VALUES ('ev-1', 'kiosk-01', 'fault', 't1', '{}', '{"status": "applied"}', 'r1');
INSERT INTO kiosk_events VALUES ('ev-2', 'kiosk-02', 'fault', 't2', '{"a": 1}', '{"status": "applied"}', 'r2');
"""


def key_of(path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {r[1]: r[5] for r in conn.execute("PRAGMA table_info(kiosk_events)")}
    finally:
        conn.close()


def test_a_file_keyed_by_event_id_alone_is_migrated_in_place(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(OLD_KIOSK_EVENTS)
    conn.close()
    assert key_of(path)["event_id"] == 1 and key_of(path)["kiosk_id"] == 0
    with pytest.raises(DatabaseBehind):
        Database(path)
    assert key_of(path)["kiosk_id"] == 0  # refused as it was

    migrate(str(path), say=lambda _: None)
    db = Database(path)
    try:
        rows = db.connection().execute("SELECT * FROM kiosk_events ORDER BY event_id").fetchall()
        assert [tuple(r) for r in rows] == [
            ("ev-1", "kiosk-01", "fault", "t1", "{}", '{"status": "applied"}', "r1"),
            ("ev-2", "kiosk-02", "fault", "t2", '{"a": 1}', '{"status": "applied"}', "r2"),
        ]
        with db.transaction() as conn:  # kiosk-02 may now use kiosk-01's id
            conn.execute(
                "INSERT INTO kiosk_events VALUES ('ev-1', 'kiosk-02', 'fault', 't', '{}', '{}', 'r')"
            )
    finally:
        db.close()
    assert key_of(path) == {
        "event_id": 2, "kiosk_id": 1, "kind": 0, "at": 0, "payload": 0, "result": 0,
        "received_at": 0,
    }  # fmt: skip
    migrate(str(path), say=lambda _: None)  # migrating again changes nothing
    Database(path).close()
    assert key_of(path)["kiosk_id"] == 1
