"""What the store server client sends its requests through: the retry policy for idempotent
calls and the certificate-pinning adapter (kiosk/sync/client.py uses both)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from requests.adapters import HTTPAdapter

__all__ = ["PinningAdapter", "RetryPolicy"]


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


class PinningAdapter(HTTPAdapter):
    """Checks the server certificate's SHA-256 (DER) on every connection, on top of CA checks."""

    def __init__(self, fingerprint: str, **kwargs: Any) -> None:
        self._fingerprint = fingerprint  # before super(): it calls init_poolmanager
        super().__init__(**kwargs)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        pool_kwargs["assert_fingerprint"] = self._fingerprint
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)
