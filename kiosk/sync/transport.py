"""What the store server client sends its requests through: its ``requests.Session``, the
retry policy for idempotent calls and the pinning adapter (kiosk/sync/client.py and
kiosk/sync/calls.py use them).

Pins name the server's public key: ``sha256/`` + base64 of the SHA-256 of the certificate's
SubjectPublicKeyInfo (DER), as HPKP's ``pin-sha256``. A certificate renewed with the same key
keeps its pin; two pins let a store move to a new key without a day when kiosks refuse it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection

from kiosk.errors import KioskError

__all__ = ["PinMismatch", "PinningAdapter", "RetryPolicy", "new_session", "spki_pin"]


# ---- values -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts for idempotent calls, with exponential backoff and jitter between them."""

    attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0

    def delay(self, retry: int, rng: random.Random) -> float:
        """Delay before retry number ``retry`` (1-based): half fixed, half random ("equal jitter")."""
        cap = min(self.max_delay_s, self.base_delay_s * 2 ** (retry - 1))
        return cap / 2 + rng.uniform(0, cap / 2)


# ---- transport ----------------------------------------------------------------------------------


def spki_pin(der_certificate: bytes) -> str:
    """``sha256/<base64>`` of the certificate's SubjectPublicKeyInfo."""
    key = x509.load_der_x509_certificate(der_certificate).public_key()
    spki = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return "sha256/" + base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


class PinMismatch(urllib3.exceptions.SSLError, KioskError):
    """The server's public key is none of the pinned ones. An urllib3 SSLError, so urllib3 and
    requests pass it on as a TLS failure (kiosk/sync/refusals.py makes it an ``Unreachable``
    for a technician); never raised to the kiosk itself."""

    def __init__(self, host: str, seen: str, pins: Sequence[str]) -> None:
        super().__init__(
            f"the public key of {host} ({seen}) matches none of the pinned keys "
            f"(server.pins = {', '.join(pins)}): if the store moved its server to a new key, "
            "add that key's pin (storeserver tls-pin server.pem) to server.pins; otherwise "
            "something is intercepting the connection"
        )
        self.seen = seen
        self.pins = tuple(pins)


class _PinnedConnection(HTTPSConnection):
    """An HTTPS connection that checks the server's key against the pins after each handshake
    (CA and host name checks have already passed)."""

    def __init__(self, *args: Any, pins: Sequence[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pins = tuple(pins)

    def connect(self) -> None:
        super().connect()
        der = self.sock.getpeercert(binary_form=True) if self.sock is not None else None
        seen = spki_pin(der) if der else "no certificate"
        if seen not in self._pins:
            self.close()
            raise PinMismatch(f"{self.host}:{self.port}", seen, self._pins)


class _PinnedPoolManager(urllib3.PoolManager):
    def __init__(self, *args: Any, pins: Sequence[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pins = tuple(pins)

    def _new_pool(self, scheme, host, port, request_context=None):
        pool = super()._new_pool(scheme, host, port, request_context)
        if scheme == "https":
            pool.ConnectionCls = functools.partial(_PinnedConnection, pins=self._pins)
        return pool


class PinningAdapter(HTTPAdapter):
    """Pins the server on every new connection, on top of CA checks: by its public key
    (``pins``, SPKI SHA-256), or - deprecated - by the certificate's SHA-256 (``fingerprint``,
    urllib3's ``assert_fingerprint``, which breaks at every certificate renewal)."""

    def __init__(
        self, pins: Sequence[str] = (), *, fingerprint: str | None = None, **kwargs: Any
    ) -> None:
        self._pins = tuple(pins)  # before super(): it calls init_poolmanager
        self._fingerprint = fingerprint
        super().__init__(**kwargs)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        if self._fingerprint:
            pool_kwargs["assert_fingerprint"] = self._fingerprint
        if not self._pins:
            super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)
            return
        self._pool_connections, self._pool_maxsize, self._pool_block = connections, maxsize, block
        self.poolmanager = _PinnedPoolManager(
            num_pools=connections, maxsize=maxsize, block=block, pins=self._pins, **pool_kwargs
        )


def new_session(
    verify: str | bool, pins: Sequence[str], pin_sha256: str | None
) -> requests.Session:
    """The client's keep-alive session: TLS verification always on (``verify``, passed again
    on every request), pinned when ``pins`` or ``pin_sha256`` are set, and blind to the
    environment (``trust_env = False``: no proxies, ``REQUESTS_CA_BUNDLE`` or ``.netrc``)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = verify
    session.headers["User-Agent"] = "loyalty-kiosk"
    session.headers["Accept"] = "application/json"
    if pins or pin_sha256:
        session.mount("https://", PinningAdapter(pins, fingerprint=pin_sha256))
    return session
