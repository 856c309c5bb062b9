"""The store server's configuration file (``storeserver serve --config PATH``, TOML).

Every unknown section or key and every bad value is refused with a message naming the file,
the key, the value and what is allowed: a server that guesses may take payments it cannot
check. Each section is read by one small function in ``SECTIONS``; to add a section, write
``_name(source, table, cfg)`` and list it there (and in docs/storeserver.md).

```toml
[server]
public_url = "https://store.example.com"   # what phones reach the server by (pay links)

[payments]
provider = "none"                          # "none" (no points + cash) or "simulated" (demo)

[till]                                     # caps, storeserver/till.py (TillLimits): cents,
purchase_cents_per_call = 5000000          # or points for manual_points_*
topup_cents_per_member_day = 1000000

[offline]                                  # enforced on uploads, sent to kiosks
member_daily_points = 500
kiosk_daily_points = 3000
max_hours = 8
```
"""

from __future__ import annotations

import dataclasses
import enum
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .payments import PaymentProvider, SimulatedPaymentProvider
from .store import StoreSettings
from .till import TillLimits


class ConfigError(Exception):
    """A configuration the server refuses to start with; the message says what to change."""


class PaymentsChoice(enum.StrEnum):
    """``[payments] provider``: which payment provider takes the cash part of a redemption."""

    SIMULATED = "simulated"  # anyone may mark a payment paid: the demo only
    NONE = "none"  # a store without points + cash: a cash part is refused


@dataclass
class ServerConfig:
    """What a config file (and the command line over it) says; ``payments`` None: not set."""

    settings: StoreSettings = field(default_factory=StoreSettings)
    payments: PaymentsChoice | None = None
    source: str = "the command line"

    def provider(self) -> PaymentProvider | None:
        """The provider to build the store with (None: no cash payments)."""
        if self.payments is PaymentsChoice.SIMULATED:
            return SimulatedPaymentProvider()
        return None


def _show(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _keys(source: str, section: str, table: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(
                f"{source}: {section}.{key}: unknown key in [{section}]; "
                f"allowed keys: {', '.join(allowed)}"
            )


def check_public_url(where: str, value: object) -> str:
    """An http(s) base URL without query or fragment, returned without a trailing slash."""
    allowed = (
        "must be an http:// or https:// URL of the store server as phones reach it, "
        'such as "https://store.example.com" (no query or fragment)'
    )
    if not isinstance(value, str):
        raise ConfigError(f"{where} = {_show(value)}: {allowed}")
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or (parts.fragment or "#" in value)
    ):
        raise ConfigError(f"{where} = {_show(value)}: {allowed}")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ConfigError(f"{where} = {_show(value)}: {allowed}") from None
    return value.rstrip("/")


def _server(source: str, table: dict[str, Any], cfg: ServerConfig) -> None:
    _keys(source, "server", table, ("public_url",))
    if "public_url" in table:
        where = f"{source}: server.public_url"
        cfg.settings.public_url = check_public_url(where, table["public_url"])


def _payments(source: str, table: dict[str, Any], cfg: ServerConfig) -> None:
    _keys(source, "payments", table, ("provider",))
    if "provider" not in table:
        raise ConfigError(
            f"{source}: payments.provider is missing: it must be one of "
            + ", ".join(_show(c.value) for c in PaymentsChoice)
        )
    value = table["provider"]
    try:
        cfg.payments = PaymentsChoice(value) if isinstance(value, str) else None
    except ValueError:
        cfg.payments = None
    if cfg.payments is None:
        raise ConfigError(
            f"{source}: payments.provider = {_show(value)}: must be one of "
            + ", ".join(_show(c.value) for c in PaymentsChoice)
            + ' ("simulated" lets anyone mark a payment paid: the demo only)'
        )


def _whole_numbers(
    source: str, section: str, table: dict[str, Any], allowed: tuple[str, ...], least: int = 1
) -> dict[str, int]:
    """The section's keys, each a whole number of at least ``least`` (TOML integers)."""
    _keys(source, section, table, allowed)
    for key, value in table.items():
        if type(value) is not int or value < least:
            raise ConfigError(
                f"{source}: {section}.{key} = {_show(value)}: must be a whole number from "
                f"{least} up"
            )
    return dict(table)


def _till(source: str, table: dict[str, Any], cfg: ServerConfig) -> None:
    """Caps on what tills and managers record (storeserver/till.py TillLimits)."""
    names = tuple(f.name for f in dataclasses.fields(TillLimits))
    caps = _whole_numbers(source, "till", table, names)
    cfg.settings.till_limits = dataclasses.replace(cfg.settings.till_limits, **caps)


_OFFLINE_KEYS = {
    "member_daily_points": "offline_member_daily_points",
    "kiosk_daily_points": "offline_kiosk_daily_points",
    "max_hours": "offline_max_hours",
}


def _offline(source: str, table: dict[str, Any], cfg: ServerConfig) -> None:
    """The offline floor limits the server enforces on uploads and sends to kiosks (0: none
    offline)."""
    limits = _whole_numbers(source, "offline", table, tuple(_OFFLINE_KEYS), least=0)
    for key, value in limits.items():
        setattr(cfg.settings, _OFFLINE_KEYS[key], value)


SECTIONS: dict[str, Callable[[str, dict[str, Any], ServerConfig], None]] = {
    "server": _server,
    "payments": _payments,
    "till": _till,
    "offline": _offline,
}


def load(path: Path, settings: StoreSettings | None = None) -> ServerConfig:
    """Read ``path`` over ``settings`` (the command line's); ConfigError says what is wrong."""
    source = str(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the config file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    cfg = ServerConfig(settings or StoreSettings(), source=source)
    for name, table in data.items():
        reader = SECTIONS.get(name)
        if reader is None:
            raise ConfigError(
                f"{source}: [{name}]: unknown section; allowed sections: {', '.join(SECTIONS)}"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: {name} = {_show(table)}: must be a table, [{name}]")
        reader(source, table, cfg)
    return cfg
