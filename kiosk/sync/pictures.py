"""Brings the kiosk's picture cache in step with the catalog (docs/kiosk-sync.md, "Pictures").

The sync worker calls :meth:`PictureFetcher.sync` with each catalog it reads. A picture the
catalog names is fetched when the cache lacks it or holds other bytes than the catalog's
``picture_sha256``; so once per change, not per poll. A picture that fails (garbage, too
large, not the bytes the catalog announced, refused by the server) is logged, remembered and
not fetched again until the catalog announces other bytes; the cached copy, if any, stays. A
server that stops answering ends the pass: the next poll tries again. A cached picture no
item of the catalog names any more is deleted (a kiosk keeps no more than it shows). Nothing
here raises.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from kiosk.errors import Rejected, StoreServerError
from kiosk.storage.pictures import BadPicture, PictureCache, plain_name
from kiosk.sync.parse import BadResponse

log = logging.getLogger(__name__)

PICTURE_TYPES = ("image/png", "image/jpeg")
_UNKNOWN = object()  # the catalog gives no picture_sha256 at all (an older store server)


class PictureSource(Protocol):
    def picture(self, name: str) -> bytes: ...


class PictureFetcher:
    """Fetches the catalog's pictures into ``cache``; ``on_change`` after any arrived."""

    def __init__(
        self,
        server: PictureSource,
        cache: PictureCache,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._server = server
        self.cache = cache
        self._on_change = on_change
        self._refused: dict[str, object] = {}  # name -> the hash it was refused for

    def sync(self, catalog: Mapping[str, Any]) -> int:
        """Fetch what the catalog names and the cache lacks; the number of pictures stored."""
        wanted = _wanted(catalog)
        if _lists_items(catalog):  # never prune on a catalog that says nothing
            self._prune(set(wanted))
        for name in set(self._refused) - set(wanted):
            del self._refused[name]  # off the catalog: a later return gets a fresh chance
        stored = 0
        for name, expected in wanted.items():
            if expected is None:
                continue  # the server has no usable file by that name: keep what we have
            if name in self._refused and self._refused[name] == expected:
                continue
            have = self.cache.sha256(name)
            if have is not None and (expected is _UNKNOWN or have == expected):
                continue
            try:
                self._fetch(name, expected)
            except (BadPicture, BadResponse, Rejected) as exc:
                kept = "keeping the cached one" if have else "showing its initial instead"
                log.warning("picture %s refused, %s: %s", name, kept, exc)
                self._refused[name] = expected
                continue
            except StoreServerError as exc:
                log.warning("pictures not fetched now, retrying at the next catalog poll: %s",
                            exc)  # fmt: skip
                break
            except OSError as exc:
                log.warning("picture %s cannot be written to %s (%s): make the state folder "
                            "writable", name, self.cache.folder, exc)  # fmt: skip
                break
            stored += 1
        if stored and self._on_change is not None:
            self._on_change()
        return stored

    def _prune(self, keep: set[str]) -> None:
        try:
            gone = self.cache.prune(keep)
        except OSError as exc:
            log.warning("old pictures in %s cannot be deleted (%s): make the state folder "
                        "writable", self.cache.folder, exc)  # fmt: skip
            return
        if gone:
            log.info("pictures no longer in the catalog deleted: %s", ", ".join(gone))
            if self._on_change is not None:
                self._on_change()

    def _fetch(self, name: str, expected: object) -> None:
        data = self._server.picture(name)
        if isinstance(expected, str) and hashlib.sha256(data).hexdigest() != expected:
            raise BadPicture(
                f"picture {name} from the server is not the one its catalog announced "
                "(SHA-256 differs)"
            )
        self.cache.store(name, data)
        log.info("picture %s stored (%d bytes)", name, len(data))


def _lists_items(catalog: Mapping[str, Any]) -> bool:
    return isinstance(catalog, Mapping) and isinstance(catalog.get("items"), list)


def _wanted(catalog: Mapping[str, Any]) -> dict[str, object]:
    """Picture name -> its SHA-256 in the catalog (None: the server has none, _UNKNOWN)."""
    items = catalog.get("items") if isinstance(catalog, Mapping) else None
    out: dict[str, object] = {}
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, Mapping):
            continue
        name = item.get("picture")
        if not plain_name(name):
            if name:
                log.debug("catalog item %s names picture %r: not a plain file name",
                          item.get("sku"), name)  # fmt: skip
            continue
        if "picture_sha256" not in item:
            out[name] = _UNKNOWN
            continue
        digest = item["picture_sha256"]
        out[name] = digest.lower() if isinstance(digest, str) and digest else None
    return out


def read_picture_body(resp: Any, max_bytes: int, what: str) -> bytes:
    """A picture answer's body, streamed: PNG or JPEG by its Content-Type, at most
    ``max_bytes`` (refused unread when the length says so). ``what`` starts each message
    ("store server at URL answered GET ..."). The cache verifies the bytes themselves."""
    ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if ctype not in PICTURE_TYPES:
        raise BadResponse(
            f"{what} with {ctype or 'no type'}, not a PNG or JPEG: check that server.url "
            "points at the store server"
        )
    too_big = BadResponse(
        f"{what} with more than {max_bytes} bytes: make the picture smaller on the store server"
    )
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_big
    body = bytearray()
    for chunk in resp.iter_content(64 * 1024):
        body += chunk
        if len(body) > max_bytes:
            raise too_big
    return bytes(body)
