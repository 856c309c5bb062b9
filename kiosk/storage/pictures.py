"""The kiosk's cache of item pictures: ``<state_dir>/pictures/<name>``, as the store server
serves them. kiosk/sync/pictures.py fills it; the catalog screen shows from it, so pictures keep
showing while the server is away.

Only verified pictures get in: at most ``MAX_PICTURE_BYTES``, a PNG or JPEG that Pillow reads
to the end, of sane dimensions, written atomically. Anything else is refused with
:class:`BadPicture` and the file already there stays as it was.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import warnings
from pathlib import Path

from PIL import Image

from kiosk.errors import KioskError
from kiosk.storage.atomic import write_file_atomic

MAX_PICTURE_BYTES = 512 * 1024
MAX_SIDE_PX = 2048  # a few KB of PNG can claim a huge canvas; Kivy would decode all of it
FORMATS = {"PNG", "JPEG"}
# a plain file name from the server: no folder, no leading dot (no '..', no temp or hidden file)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


class BadPicture(KioskError):
    """Bytes that are not a picture the kiosk will show (too large, not PNG/JPEG, broken)."""


def plain_name(name: object) -> bool:
    """A name the cache may hold: a plain file name, never a path out of the folder."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def verify(data: bytes, what: str = "picture") -> str:
    """The picture's format (PNG or JPEG) if ``data`` is a whole, sane one; else BadPicture."""
    if len(data) > MAX_PICTURE_BYTES:
        raise BadPicture(f"{what} is {len(data)} bytes, over {MAX_PICTURE_BYTES}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt, size = img.format, img.size
                if fmt not in FORMATS:
                    raise BadPicture(f"{what} is {fmt or 'not an image'}, not a PNG or JPEG")
                if max(size) > MAX_SIDE_PX or min(size) < 1:
                    raise BadPicture(f"{what} is {size[0]}x{size[1]} px, over {MAX_SIDE_PX}")
                img.verify()  # checksums and structure, without decoding
            with Image.open(io.BytesIO(data)) as img:
                img.load()  # and every pixel: a truncated JPEG passes verify()
    except BadPicture:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, struct.error...
        raise BadPicture(
            f"{what} is not a readable PNG or JPEG ({type(exc).__name__}: {exc})"
        ) from None
    return fmt


class PictureCache:
    """Verified item pictures in ``folder``, by the server's file names.

    ``generation`` counts the pictures stored since start, so a screen can tell that it
    should load its pictures again (Kivy caches textures by file name).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.generation = 0
        self._lock = threading.Lock()
        self._hashes: dict[str, tuple[tuple[int, int, int], str]] = {}

    def path(self, name: str | None) -> Path | None:
        """The cached picture for ``name``, if there is one."""
        if not plain_name(name):
            return None
        path = self.folder / name  # type: ignore[operator]
        return path if path.is_file() else None

    def sha256(self, name: str) -> str | None:
        """The cached picture's SHA-256 (the catalog's ``picture_sha256``), None if absent."""
        path = self.path(name)
        if path is None:
            return None
        try:
            st = path.stat()
            key = (st.st_size, st.st_mtime_ns, st.st_ino)
            with self._lock:
                known = self._hashes.get(name)
            if known is not None and known[0] == key:
                return known[1]
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            return None
        with self._lock:
            self._hashes[name] = (key, digest)
        return digest

    def store(self, name: str, data: bytes) -> Path:
        """Keep ``data`` as ``name`` once verified; BadPicture (nothing changed) or OSError."""
        if not plain_name(name):
            raise BadPicture(f"picture name {name!r} is not a plain file name")
        verify(data, f"picture {name}")
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / name
        write_file_atomic(path, data, 0o644, tmp_name=f".{name}.tmp")
        with self._lock:
            self._hashes.pop(name, None)
            self.generation += 1
        return path

    def prune(self, keep: set[str]) -> list[str]:
        """Delete every cached picture not named in ``keep`` (and stray temp files): a
        picture that left the catalog is not kept on the kiosk. The names deleted."""
        try:
            entries = sorted(self.folder.iterdir())
        except FileNotFoundError:
            return []
        gone = []
        for path in entries:
            if path.name in keep or not path.is_file():
                continue
            path.unlink(missing_ok=True)
            with self._lock:
                self._hashes.pop(path.name, None)
            gone.append(path.name)
        return gone
