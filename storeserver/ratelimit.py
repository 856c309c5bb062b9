"""Per-token rate limits: an in-process token bucket per (token hash, route group).

Pure: the caller passes the clock (monotonic seconds) and the rates; nothing here knows HTTP.
A bucket holds up to ``burst`` requests and refills at ``per_minute``; a request that finds
it empty is refused with the seconds until the next token, and takes nothing. Buckets are
kept for at most ``max_keys`` (token, group) pairs, least recently used dropped first: a
dropped bucket comes back full, which only ever lets a caller through.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    """Requests a minute, and how many may come at once."""

    per_minute: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_minute <= 0 or self.burst < 1:
            raise ValueError(f"a rate needs per_minute > 0 and burst >= 1, not {self}")


# Route groups and their default rates, per token. A kiosk serves one member at a time (a
# scan, a hold or spin every 10 s at the most); the staff tests use at most 9 of the 30 PIN
# checks' burst (docs/storeserver.md). The contract fuzzing and the crash campaign, which
# drive one token far faster than a kiosk, run with no limit.
DEFAULT_RATES: dict[str, Rate] = {
    "resolve": Rate(per_minute=120, burst=60),
    "holds": Rate(per_minute=120, burst=60),
    "spins": Rate(per_minute=120, burst=60),
    "pin": Rate(per_minute=60, burst=30),  # a check costs 0.1 s of scrypt; lockouts are per staff
}


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets keyed by (key, group); safe to share between threads."""

    def __init__(
        self,
        rates: Mapping[str, Rate],
        clock: Callable[[], float],
        max_keys: int = 10_000,
    ) -> None:
        self.rates = dict(rates)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[tuple[str, str], _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, group: str) -> float:
        """Spend one request of ``key`` in ``group``: 0.0 if allowed, else the seconds to wait
        (nothing spent). A group without a rate is not limited."""
        rate = self.rates.get(group)
        if rate is None:
            return 0.0
        now = self.clock()
        with self._lock:
            bucket = self._buckets.pop((key, group), None) or _Bucket(rate.burst, now)
            elapsed = max(0.0, now - bucket.at)  # a clock that stepped back refills nothing
            tokens = min(float(rate.burst), bucket.tokens + elapsed * rate.per_minute / 60)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) * 60 / rate.per_minute
            self._buckets[(key, group)] = _Bucket(tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        return wait
