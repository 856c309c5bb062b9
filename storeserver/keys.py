"""The store's Ed25519 signing keys, in owner-only files beside (never inside) the database.

Files (``path`` is ``StoreSettings.signing_key_file``, default ``<db stem>.keys/signing.pem``)::

    signing.pem                  the current key: every code and badge is signed with it
    signing.pem.previous         the key before the last rotation, trusted until ...
    signing.pem.previous-until   ... this Unix time (the overlap's end)

Keys are PEM PKCS#8 (``openssl pkey -in signing.pem -pubout`` reads them). A key file that
group or others may read is refused: ``chmod 600`` it. New files are made 0600 with
O_CREAT|O_EXCL, written and fsync'd under a temp name, then linked into place, so a reader
never sees half a key and two processes starting at once end up with the same key.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

log = logging.getLogger(__name__)

DEFAULT_OVERLAP_DAYS = 7
KEY_FILE_NAME = "signing.pem"


class KeyFileError(ValueError):
    """A key file that cannot be used; the message says what to do."""


def default_key_file(db_path: str | Path) -> Path:
    """``<db stem>.keys/signing.pem`` beside the database."""
    db = Path(db_path).resolve()
    return db.parent / f"{db.stem}.keys" / KEY_FILE_NAME


def previous_file(path: Path) -> Path:
    return path.with_name(path.name + ".previous")


def until_file(path: Path) -> Path:
    return path.with_name(path.name + ".previous-until")


# ---- files ----------------------------------------------------------------------------------


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_folder(folder: Path) -> None:
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700)
        os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask
        log.info("made the key folder %s (0700)", folder)


def _write_new(path: Path, data: bytes) -> bool:
    """Create ``path`` holding ``data`` (0600) unless it exists; True if this call made it."""
    _make_folder(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic, and fails if another process made it first
        except FileExistsError:
            return False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    _fsync_dir(path.parent)
    return True


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def read_key(path: Path) -> Ed25519PrivateKey:
    """An owner-only PEM Ed25519 key; KeyFileError if readable by others or not such a key."""
    try:
        mode = os.stat(path).st_mode
        if mode & 0o077:
            raise KeyFileError(
                f"the signing key {path} may be read by group or others "
                f"(mode {stat.S_IMODE(mode):04o}): chmod 600 {path}"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read the signing key {path}: {exc.strerror}") from None
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(
            f"{path} is not an unencrypted PEM private key ({exc}): restore it from the backup"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 key: restore it from the backup")
    return key


def create_key(path: Path, key: Ed25519PrivateKey | None = None) -> Ed25519PrivateKey:
    """The key at ``path``, made (from ``key``, or a new one) if there is none yet."""
    if _write_new(path, _pem(key or Ed25519PrivateKey.generate())):
        log.info("signing key written to %s (0600)", path)
    return read_key(path)


def _public_raw(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes_raw()


# ---- the key ring -----------------------------------------------------------------------------


@dataclass(frozen=True)
class KeySet:
    """The keys as they stand: sign with ``current``; also trust ``previous`` until ``until``."""

    current: Ed25519PrivateKey
    previous: Ed25519PrivateKey | None = None
    until: int | None = None  # Unix seconds

    def trusted(self, now_s: float) -> tuple[Ed25519PublicKey, ...]:
        """The public keys a code may be signed with at ``now_s``: current first."""
        keys = [self.current.public_key()]
        if self.previous is not None and (self.until is None or now_s < self.until):
            keys.append(self.previous.public_key())
        return tuple(keys)


class KeyRing:
    """The signing keys of one store, re-read when their files change (``rotate-key`` run
    while the server serves takes effect at its next request)."""

    def __init__(self, path: Path, now: Callable[[], float]) -> None:
        self.path = path
        self._now = now
        self._lock = threading.Lock()
        self._stamp: tuple = ()
        self._keys: KeySet | None = None

    def keys(self) -> KeySet:
        stamp = tuple(_stamp(p) for p in (self.path, previous_file(self.path)))
        with self._lock:
            if self._keys is None or stamp != self._stamp:
                self._keys, self._stamp = load_keys(self.path, self._now()), stamp
            return self._keys

    def current(self) -> Ed25519PrivateKey:
        return self.keys().current

    def trusted(self) -> tuple[Ed25519PublicKey, ...]:
        return self.keys().trusted(self._now())


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def load_keys(path: Path, now_s: float) -> KeySet:
    """The current key (which must exist) and the previous one while its overlap lasts; a
    previous key past its overlap is removed (``finish_rotation``)."""
    current = read_key(path)
    if not previous_file(path).exists():
        return KeySet(current)
    until = _read_until(path)
    if until is not None and now_s >= until:
        log.info("the key rotation's overlap ended: dropping the previous signing key")
        finish_rotation(path)
        return KeySet(current)
    return KeySet(current, read_key(previous_file(path)), until)


def _read_until(path: Path) -> int | None:
    try:
        return int(until_file(path).read_text().strip())
    except FileNotFoundError:
        return None
    except ValueError:
        raise KeyFileError(
            f"{until_file(path)} is not a Unix time: fix it, or end the overlap with "
            "'storeserver rotate-key --finish'"
        ) from None


# ---- migration and rotation --------------------------------------------------------------------


def open_keys(path: Path, db_key_hex: Callable[[], str | None], forget_db_key: Callable[[], None]):
    """Make sure the current key file exists: move a key found in the database out to it
    (written and fsync'd first, then the database row deleted), or make a new one."""
    legacy = db_key_hex()
    if legacy is not None:
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(legacy))
        if path.exists() and _public_raw(read_key(path)) != _public_raw(key):
            raise KeyFileError(
                f"the database holds a signing key (meta.signing_key) and {path} holds another: "
                "keep the one your kiosks trust, and delete the other"
            )
        create_key(path, key)
        forget_db_key()
        log.warning("signing key moved out of the database to %s (0600)", path)
    elif not path.exists():
        create_key(path)
    read_key(path)  # refuse a readable-by-others file at start, not at the first code


def rotate(path: Path, now_s: int, overlap_s: int) -> KeySet:
    """A new current key; the old one stays trusted for ``overlap_s``."""
    keys = load_keys(path, now_s)
    if keys.previous is not None:
        raise KeyFileError(
            f"a rotation is still in its overlap (until {keys.until}): codes signed by the "
            "previous key would stop working at once; finish it first with "
            "'storeserver rotate-key --finish'"
        )
    nxt = path.with_name(path.name + ".next")
    for stale in (nxt, until_file(path), previous_file(path)):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()  # left by a rotation that died half-way, or a past overlap
    _write_new(nxt, _pem(Ed25519PrivateKey.generate()))
    _write_new(until_file(path), f"{now_s + overlap_s}\n".encode())
    os.link(path, previous_file(path))  # previous == current until the next line
    os.replace(nxt, path)
    _fsync_dir(path.parent)
    log.warning("signing key rotated: %s is new, the previous key is trusted until %d",
                path, now_s + overlap_s)  # fmt: skip
    return load_keys(path, now_s)


def finish_rotation(path: Path) -> bool:
    """Drop the previous key; True if there was one."""
    had = previous_file(path).exists()
    for f in (previous_file(path), until_file(path)):
        with contextlib.suppress(FileNotFoundError):
            f.unlink()
    if had:
        _fsync_dir(path.parent)
        log.warning("previous signing key removed: codes and badges it signed are refused")
    return had
