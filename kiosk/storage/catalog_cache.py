"""The last catalog the store server sent, kept in ``<state_dir>/catalog.json``.

A kiosk that restarts during a network outage (a power cut in the store takes the router
with it) must still offer gifts within its offline limits; without the catalog it could
offer nothing. The cache is written atomically when the catalog's version changes and read
once at start-up; a damaged file is moved aside as ``catalog.json.bad`` and the kiosk starts
without a catalog until the server answers, as before. Never raises: the sync thread saves.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from kiosk.storage.atomic import write_file_atomic

__all__ = ["CatalogCache"]

log = logging.getLogger(__name__)


class CatalogCache:
    """The server's catalog answer as it came, with when it was fetched, by version."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._saved: object = None  # the version on disk (None: not known yet)

    def load(self) -> tuple[dict[str, Any], float] | None:
        """The cached answer and when it was fetched (epoch seconds), or None (no file, or a
        damaged one, moved aside)."""
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self._quarantine(f"cannot be read ({exc})")
            return None
        catalog = data.get("catalog") if isinstance(data, dict) else None
        fetched_at = data.get("fetched_at") if isinstance(data, dict) else None
        if not isinstance(catalog, dict) or not isinstance(fetched_at, int | float):
            self._quarantine("is not a cached catalog")
            return None
        self._saved = catalog.get("version")
        return catalog, float(fetched_at)

    def save(self, data: dict[str, Any], fetched_at: float) -> None:
        """Keep ``data`` (fetched at ``fetched_at``) unless this version is on disk already."""
        version = data.get("version")
        if version is not None and version == self._saved:
            return
        try:
            body = json.dumps({"fetched_at": fetched_at, "catalog": data}, ensure_ascii=False,
                              separators=(",", ":")).encode()  # fmt: skip
            write_file_atomic(self.path, body, 0o600)
        except (OSError, TypeError, ValueError) as exc:
            log.warning("catalog cache %s not written (offline start-up will lack it): %s",
                        self.path, exc)  # fmt: skip
            return
        self._saved = version
        log.info("catalog version %s cached in %s", version, self.path)

    def _quarantine(self, why: str) -> None:
        bad = self.path.with_name(self.path.name + ".bad")
        try:
            os.replace(self.path, bad)
        except OSError as exc:
            log.warning("catalog cache %s %s and could not be moved aside: %s", self.path, why, exc)
            return
        log.warning("catalog cache %s %s: moved to %s; the server's next catalog replaces it",
                    self.path, why, bad)  # fmt: skip
