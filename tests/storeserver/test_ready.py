"""Readiness: ``GET /v1/ready`` answers 200 only while the database answers a read; liveness
(``/v1/health``) stays up either way."""

from __future__ import annotations

from pathlib import Path


def test_ready_when_the_database_answers(anon):
    resp = anon.get("/v1/ready")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ready"}


def test_not_ready_when_the_database_file_is_unusable(anon, store):
    path = Path(store.db.path)
    store.db.close()  # every thread opens the file again at its next request
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        name.unlink(missing_ok=True)
    path.write_bytes(b"this is not an SQLite database file" * 200)
    resp = anon.get("/v1/ready")
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "not_ready"
    assert "database" in body["reason"] and "not a database" in body["reason"]
    assert anon.get("/v1/health").status_code == 200  # liveness is not readiness
