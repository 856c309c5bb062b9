"""Item pictures: PNG or JPEG files in the store's pictures folder, served to kiosks by name.

The catalog names a picture (``items.picture``) and gives its SHA-256, so a kiosk fetches a
picture once and again only when the file changed. Only plain file names are served, and only
files that are what they claim (PNG or JPEG by their first bytes) and at most
``MAX_PICTURE_BYTES``: a kiosk refuses anything else anyway.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from .errors import BadRequest, NotFound, shown

log = logging.getLogger(__name__)

MAX_PICTURE_BYTES = 512 * 1024  # the kiosk's limit too (kiosk/storage/pictures.py)
# a plain file name: no folder, no leading dot (no '..', no hidden files), a picture's suffix
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\.(png|jpe?g)", re.IGNORECASE)
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


@dataclass(frozen=True)
class Picture:
    name: str
    data: bytes
    content_type: str
    sha256: str

    @property
    def etag(self) -> str:
        return f'"{self.sha256}"'


def content_type(data: bytes) -> str | None:
    """image/png or image/jpeg by the file's signature, else None."""
    return next((ct for magic, ct in _MAGIC if data.startswith(magic)), None)


def valid_name(name: str) -> bool:
    return NAME.fullmatch(name) is not None


class PictureFolder:
    """The pictures folder (``serve --pictures``, default ``pictures/`` beside the database).

    Files are read when asked for; what was read (or why it is unusable) is kept by (size,
    mtime, inode), so the catalog's hashes cost a ``stat`` per item and a replaced file is
    noticed at once.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[int, int, int], Picture | NotFound]] = {}

    def get(self, name: str) -> Picture:
        """The picture, or BadRequest (not a plain picture file name) / NotFound."""
        if not valid_name(name):
            raise BadRequest(
                "bad_picture_name",
                "a picture name is a plain file name ending .png, .jpg or .jpeg "
                "(letters, digits, '.', '_', '-'; no folders)",
            )
        path = self.folder / name
        try:
            st = path.stat()
        except OSError:
            raise NotFound(
                "unknown_picture", f"no picture {shown(name)} on this store server"
            ) from None
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None and cached[0] == key:
            found = cached[1]
        else:
            try:
                found = self._read(path, name, st.st_size)
            except NotFound as exc:  # kept too: a bad file is logged once, not per catalog
                found = exc
            with self._lock:
                self._cache[name] = (key, found)
        if isinstance(found, NotFound):
            raise NotFound(found.code, found.message)
        return found

    def sha256(self, name: str | None) -> str | None:
        """The picture's hash for the catalog; None when there is no usable picture."""
        if not name:
            return None
        try:
            return self.get(name).sha256
        except (BadRequest, NotFound):
            return None

    def _read(self, path: Path, name: str, size: int) -> Picture:
        unusable = f"picture {shown(name)} on this store server is unusable"
        if not path.is_file():
            raise NotFound("unknown_picture", f"no picture {shown(name)} on this store server")
        if size > MAX_PICTURE_BYTES:
            log.warning("picture %s is %d bytes, over %d: not served", path, size,
                        MAX_PICTURE_BYTES)  # fmt: skip
            raise NotFound("unusable_picture", f"{unusable} (over {MAX_PICTURE_BYTES} bytes)")
        try:
            with path.open("rb") as f:
                data = f.read(MAX_PICTURE_BYTES + 1)
        except OSError as exc:
            log.warning("picture %s cannot be read: %s", path, exc)
            raise NotFound("unusable_picture", f"{unusable} (cannot be read)") from None
        ctype = content_type(data)
        if len(data) > MAX_PICTURE_BYTES or ctype is None:
            log.warning("picture %s is not a PNG or JPEG of at most %d bytes: not served",
                        path, MAX_PICTURE_BYTES)  # fmt: skip
            raise NotFound("unusable_picture", f"{unusable} (not a PNG or JPEG)")
        return Picture(name, data, ctype, hashlib.sha256(data).hexdigest())
