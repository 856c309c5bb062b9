"""The sync worker's heartbeat: the health report it sends, and the clock skew it reads back.

The report is the health provider's dict as plain finite JSON plus the worker's own state under
"sync"; a provider that raises is reported, not fatal. The skew is the server's clock minus the
kiosk's. The answer also names the store's member-code public keys (``public_keys``, current
first), so a key rotation reaches the kiosk within a heartbeat, and the store's list of staff
who may not sign in offline (``revoked_staff``, read by :func:`revoked_staff`). Member codes
are checked against the kiosk clock, so a skew over the limit is logged
once, and once more when it is back within it. docs/kiosk-sync.md has the long form.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

from kiosk.domain.member_codes import MAX_KEYS
from kiosk.domain.staff import RevokedStaff
from kiosk.storage.outbox import Outbox
from kiosk.sync.parse import BadResponse

__all__ = ["Heartbeat", "clean_health", "no_health", "read_public_keys", "revoked_staff"]

log = logging.getLogger(__name__)


def no_health() -> dict[str, Any]:
    """A health provider with nothing to report."""
    return {}


class Heartbeat:
    """Builds each heartbeat's health report and reads the clock skew from the server's answer.

    ``skew`` is the last reading (None before the first); it may be read from any thread, the
    rest is for the worker thread. ``on_provider_error`` is called when the provider raised.
    """

    def __init__(
        self,
        provider: Callable[[], Mapping[str, Any]],
        outbox: Outbox,
        *,
        on_provider_error: Callable[[], None],
    ) -> None:
        self._provider = provider
        self._outbox = outbox
        self._on_provider_error = on_provider_error
        self.skew: float | None = None  # server minus kiosk; positive: the kiosk clock is behind
        self._skew_warned = False

    def report(self, *, failures: int) -> dict[str, Any]:
        """The provider's health, plus "sync" (outbox, alerts, skew, failures) unless it has one."""
        try:
            health = clean_health(dict(self._provider()))
        except Exception as exc:  # a broken probe must not stop syncing: report it instead
            log.exception("sync health provider failed")
            self._on_provider_error()
            health = {"health_error": f"{type(exc).__name__}: {exc}"[:200]}
        if not _fits(health):
            log.warning("sync health report over %d bytes: only its size is sent", MAX_REPORT_BYTES)
            health = {
                "health_error": f"health report over {MAX_REPORT_BYTES} bytes: trim the probes"
            }
        sync = {"outbox": len(self._outbox), "alerts": len(self._outbox.alerts())}
        health.setdefault("sync", {**sync, "clock_skew_s": self.skew, "failures": failures})
        return health

    def read_skew(self, answer: object, sent: float, received: float, warn_s: float) -> float:
        """Set ``skew`` from the heartbeat's ``answer`` to a request sent at ``sent`` and
        answered at ``received`` (kiosk clock), and return it; BadResponse without a usable
        ``server_time``. Logs when the skew crosses ``warn_s``, either way."""
        server_time = answer.get("server_time") if isinstance(answer, dict) else None
        try:
            parsed = dt.datetime.fromisoformat(server_time)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise BadResponse(
                f"store server answered the heartbeat without a usable server_time "
                f"({server_time!r:.60}): check the store server version"
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        # The server read its clock somewhere in the round trip: the midpoint is the best guess
        # (error at most half the round trip, plus the server's one-second resolution).
        skew = parsed.timestamp() - (sent + received) / 2
        self.skew = skew
        self._watch(skew, warn_s)
        return skew

    def _watch(self, skew: float, limit: float) -> None:
        if abs(skew) > limit and not self._skew_warned:
            log.warning(
                "kiosk clock is %.1f s %s the store server's (over %.0f s): member codes are "
                "checked against the kiosk clock and may be refused; check NTP (timedatectl)",
                abs(skew),
                "behind" if skew > 0 else "ahead of",
                limit,
            )
        elif abs(skew) <= limit and self._skew_warned:
            log.info("kiosk clock is within %.1f s of the store server's again", abs(skew))
        self._skew_warned = abs(skew) > limit


# The store server's bounds on a heartbeat's health (storeserver/event_payloads.py): a report
# over them is refused whole, so every heartbeat would fail; the kiosk cuts its report to fit.
MAX_DEPTH = 5  # containers nested at most this deep; the server allows 6
MAX_JSON_KEYS = 64
MAX_KEY_CHARS = 64
MAX_STRING_CHARS = 1000
MAX_ITEMS = 100
MAX_INT = 2**53
MAX_REPORT_BYTES = 12_000  # the server takes 16 KB


def read_public_keys(answer: object) -> tuple[str, ...] | None:
    """The heartbeat answer's ``public_keys`` (base64 of raw 32-byte keys, current first);
    None from a server that does not send them; BadResponse when they are not such keys."""
    keys = answer.get("public_keys") if isinstance(answer, dict) else None
    if keys is None:
        return None
    if isinstance(keys, list) and 1 <= len(keys) <= MAX_KEYS and all(map(_is_key, keys)):
        return tuple(keys)
    raise BadResponse(
        f"store server answered the heartbeat with unusable public_keys ({keys!r:.80}): "
        "check the store server version"
    )


def _is_key(text: object) -> bool:
    try:
        return isinstance(text, str) and len(base64.b64decode(text, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def revoked_staff(answer: object) -> RevokedStaff | None:
    """The heartbeat answer's list of staff who may not sign in offline; None from a server
    older than the list; BadResponse when it is there but not a list."""
    raw = answer.get("revoked_staff") if isinstance(answer, dict) else None
    if raw is None:
        return None
    try:
        return RevokedStaff.from_record(raw)
    except ValueError as exc:
        raise BadResponse(
            f"store server answered the heartbeat with an unusable revoked_staff ({exc}): "
            "check the store server version"
        ) from None


def clean_health(value: Any, depth: int = 0) -> Any:
    """The health report as plain finite JSON within the server's bounds: the server refuses
    NaN and oversized values, and odd objects become text, so a sloppy probe cannot get every
    heartbeat refused."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) <= MAX_INT else repr(value)[:200]
    if isinstance(value, str):  # a lone surrogate cannot be sent as UTF-8
        return value.encode("utf-8", "replace").decode()[:MAX_STRING_CHARS]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth < MAX_DEPTH and isinstance(value, Mapping):
        items = list(value.items())[:MAX_JSON_KEYS]
        return {clean_health(str(k))[:MAX_KEY_CHARS]: clean_health(v, depth + 1) for k, v in items}
    if depth < MAX_DEPTH and isinstance(value, list | tuple | set | frozenset):
        return [clean_health(v, depth + 1) for v in list(value)[:MAX_ITEMS]]
    return repr(value)[:200]


def _fits(health: dict[str, Any]) -> bool:
    size = len(json.dumps(health, ensure_ascii=False, separators=(",", ":")).encode())
    return size <= MAX_REPORT_BYTES
