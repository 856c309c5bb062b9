"""The rules each key of the kiosk configuration is checked by (kiosk/config.py): a value's
type and range, and the message naming what is allowed when it is not."""

# _key() returns dataclasses.field(), which RUF009 cannot see through.

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kiosk.errors import ConfigError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


# --- validator helpers -----------------------------------------------------------------------


class _Invalid(ConfigError):
    """Raised by a rule's test; its argument replaces the rule's `allowed` text (in the
    ConfigError that names the file and key)."""


@dataclass(frozen=True)
class _Rule:
    """What a key accepts: a description for messages, a test, and a conversion of good values."""

    allowed: str
    ok: Callable[[Any], bool]
    convert: Callable[[Any], Any] = lambda value: value


def _show(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def _choice(*options: object) -> _Rule:
    # Compare types too: TOML true must not match 1, nor 58.0 match 58.
    return _Rule(
        "must be one of " + ", ".join(_show(o) for o in options),
        lambda v: any(type(v) is type(o) and v == o for o in options),
    )


def _int_range(low: int, high: int) -> _Rule:
    # type() rather than isinstance(): bool is a subclass of int.
    return _Rule(
        f"must be a whole number from {low} to {high}",
        lambda v: type(v) is int and low <= v <= high,
    )


def _number_range(low: float, high: float) -> _Rule:
    return _Rule(  # NaN fails the comparison
        f"must be a number from {low} to {high}",
        lambda v: type(v) in (int, float) and low <= v <= high,
        float,
    )


def _boolean() -> _Rule:
    return _Rule(
        "must be true or false (a TOML boolean, without quotes)", lambda v: type(v) is bool
    )


def _string(max_len: int = 80, pattern: str = r".+", allowed: str = "") -> _Rule:
    return _Rule(
        allowed or f"must be a non-empty string of at most {max_len} characters",
        lambda v: (
            isinstance(v, str)
            and v.strip() != ""
            and len(v) <= max_len
            and re.fullmatch(pattern, v) is not None
        ),
    )


def _zone(value: Any) -> bool:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise _Invalid(
            "must be an IANA time zone such as Asia/Shanghai (install the tzdata package "
            "if a valid zone is not found)"
        ) from None
    return True


def _path(relative: str = "") -> _Rule:
    """An absolute path (or one relative to the folder in key `relative`); existence unchecked."""
    return _Rule(
        f"must be an absolute path{f' or a path relative to {relative}' if relative else ''}",
        lambda v: (
            isinstance(v, str)
            and v.strip() != ""
            and "\0" not in v
            and (bool(relative) or v.startswith("/"))
        ),
        Path,
    )


def _is_server_url(value: Any) -> bool:
    if not isinstance(value, str) or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
        host, _ = parts.hostname, parts.port  # .port raises ValueError on a bad port
    except ValueError:
        return False
    if parts.scheme == "http" and host and host not in LOOPBACK_HOSTS:
        loopback = ", ".join(LOOPBACK_HOSTS)
        raise _Invalid(f"TLS is required: use https:// (http:// is allowed only for {loopback})")
    return parts.scheme in ("http", "https") and bool(host)


_SERVER_URL = _Rule(
    "must be an http:// or https:// URL such as https://store.example.com",
    _is_server_url,
    lambda v: v.rstrip("/"),
)
_KIOSK_ID = _string(
    32,
    r"[a-z0-9][a-z0-9-]{1,31}",
    "must be 2-32 characters of a-z, 0-9 and '-', not starting with '-'",
)
_PIN = _Rule(
    "must be 64 hex digits (a SHA-256 fingerprint)", _string(64, r"[0-9a-fA-F]{64}").ok, str.lower
)
_SPKI_PIN = re.compile(r"sha256/[A-Za-z0-9+/]{43}=")
MAX_PINS = 2  # the server's key and the one it will move to


def _is_pin_list(value: Any) -> bool:
    if isinstance(value, list) and any(
        isinstance(v, str) and re.fullmatch(r"[0-9a-fA-F:]{64,95}", v) for v in value
    ):
        raise _Invalid(
            'a pin names the server\'s public key, not the certificate: "sha256/" and 44 '
            "base64 characters (print it with `storeserver tls-pin server.pem`)"
        )
    return (
        isinstance(value, list)
        and 1 <= len(value) <= MAX_PINS
        and all(isinstance(v, str) and _SPKI_PIN.fullmatch(v) for v in value)
        and len(set(value)) == len(value)
    )


_PINS = _Rule(
    f'must be a list of 1 to {MAX_PINS} different pins, each "sha256/" and 44 base64 '
    "characters (print one with `storeserver tls-pin server.pem`)",
    _is_pin_list,
    tuple,
)
_CAMERA_DEVICE = _Rule(
    "must be a camera index from 0 to 63 or a device path such as /dev/video0 or "
    "/dev/v4l/by-id/usb-...-video-index0",
    lambda v: (type(v) is int and 0 <= v <= 63) or (isinstance(v, str) and v.startswith("/")),
)
_DEVICE_PATH = _string(pattern=r"/.+", allowed="must be a device path such as /dev/ttyUSB0")
_GPIO = _int_range(2, 27)  # BCM numbers of the 40-pin header's GPIOs


def _key(rule: _Rule | None, default: Any = MISSING) -> Any:
    """A field read from the TOML key of the same name; without a default the key is required."""
    return field(default=default, metadata={"rule": rule})
