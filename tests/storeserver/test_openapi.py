"""The committed OpenAPI document (docs/api/openapi.json) is what the app serves now."""

from __future__ import annotations

import json
from pathlib import Path

from storeserver import openapi

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "api" / "openapi.json"
REGENERATE = (
    f"run '{openapi.REGENERATE}' from the repository root and commit {openapi.DEFAULT_PATH}"
)


def test_committed_openapi_document_is_current():
    assert COMMITTED.is_file(), f"{COMMITTED} is missing: {REGENERATE}"
    committed = COMMITTED.read_text(encoding="utf-8")
    current = openapi.render()
    if committed != current:
        # name the first differing paths so the failure says what changed, not just that it did
        old, new = json.loads(committed), json.loads(current)
        changed = sorted(
            p
            for p in set(old.get("paths", {})) | set(new.get("paths", {}))
            if old.get("paths", {}).get(p) != new.get("paths", {}).get(p)
        )
        detail = f" (changed paths: {', '.join(changed)})" if changed else ""
        raise AssertionError(f"docs/api/openapi.json is out of date{detail}: {REGENERATE}")


def test_check_mode_reports_a_stale_file(tmp_path, capsys):
    stale = tmp_path / "openapi.json"
    stale.write_text("{}\n", encoding="utf-8")
    assert openapi.main(["--check", str(stale)]) == 1
    assert openapi.REGENERATE in capsys.readouterr().err
    assert openapi.main([str(stale)]) == 0
    assert openapi.main(["--check", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == openapi.render()
