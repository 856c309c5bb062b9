"""The last catalog kept for a start-up without the store server."""

from __future__ import annotations

import json

from kiosk.storage.catalog_cache import CatalogCache

ANSWER = {"version": "v1", "items": [{"sku": "MUG", "name_zh": "保温杯"}]}


def test_saved_then_loaded_as_it_came(tmp_path):
    cache = CatalogCache(tmp_path / "catalog.json")
    assert cache.load() is None
    cache.save(ANSWER, 1700000000.5)
    assert CatalogCache(tmp_path / "catalog.json").load() == (ANSWER, 1700000000.5)
    assert (tmp_path / "catalog.json").stat().st_mode & 0o777 == 0o600
    assert "保温杯" in (tmp_path / "catalog.json").read_text(encoding="utf-8")


def test_the_same_version_is_not_written_again(tmp_path):
    path = tmp_path / "catalog.json"
    cache = CatalogCache(path)
    cache.save(ANSWER, 1.0)
    path.write_text(json.dumps({"fetched_at": 1.0, "catalog": ANSWER, "marker": 1}))
    cache.save(ANSWER, 2.0)  # same version: the file stays
    assert json.loads(path.read_text())["marker"] == 1
    cache.save({**ANSWER, "version": "v2"}, 3.0)
    assert CatalogCache(path).load() == ({**ANSWER, "version": "v2"}, 3.0)


def test_a_damaged_file_is_moved_aside_not_used(tmp_path, caplog):
    path = tmp_path / "catalog.json"
    for damage in (b'{"fetched_at": 1, "cata', b"[1, 2]", b'{"catalog": {}}'):
        path.write_bytes(damage)
        assert CatalogCache(path).load() is None
        assert not path.exists() and (tmp_path / "catalog.json.bad").read_bytes() == damage
    assert "moved to" in caplog.text


def test_a_write_that_fails_is_logged_and_not_raised(tmp_path, caplog):
    cache = CatalogCache(tmp_path / "missing-folder" / "sub" / "catalog.json")
    (tmp_path / "missing-folder").write_text("a file where the folder should be")
    cache.save(ANSWER, 1.0)
    assert "not written" in caplog.text
