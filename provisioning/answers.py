"""The kiosk's config file from an answers file and/or flags, validated before anything is written.

An answers file is a kiosk.toml, whole or in part (docs/config.md). Flags override single
keys. Without either, an existing /etc/kiosk/kiosk.toml is kept as it is (still validated),
and flags alone are applied on top of it, so a re-run changes only what a flag says.
"""

from __future__ import annotations

import json
import logging
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.config import SECTIONS, KioskConfig, parse_config
from kiosk.errors import ConfigError
from provisioning.files import CONFIG_PATH
from provisioning.target import Target

log = logging.getLogger(__name__)

# argparse dest -> (section, key) in kiosk.toml
FLAG_KEYS = {
    "kiosk_id": ("kiosk", "id"),
    "store_name_zh": ("kiosk", "store_name_zh"),
    "store_name_en": ("kiosk", "store_name_en"),
    "language": ("kiosk", "language"),
    "timezone": ("kiosk", "timezone"),
    "server_url": ("server", "url"),
    "server_pin": ("server", "pins"),
}
HEADER = (
    "# /etc/kiosk/kiosk.toml, written by kiosk-provision. Every key: docs/config.md.\n"
    "# Check after editing: kiosk --config /etc/kiosk/kiosk.toml check-config\n"
)
NO_CONFIG = (
    "no configuration: pass --kiosk-id, --server-url and one --compartment "
    "NUMBER:RELAY_PIN:SENSOR_PIN per locker door, or --answers FILE (a kiosk.toml, "
    "docs/provisioning.md)"
)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class ConfigPlan:
    """The config file's text, what it validated to, and where it came from."""

    text: str
    config: KioskConfig
    origin: str

    def summary(self) -> str:
        return f"kiosk {self.config.kiosk.id}, server {self.config.server.url}, from {self.origin}"


def read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    """A TOML file's text and data; every failure is a ConfigError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
        return text, tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found: check the path") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the file is not valid UTF-8: save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: TOML syntax error: {exc}: fix that line (strings need double quotes, "
            "one key = value per line, each key once per table)"
        ) from None


def _string(value: str) -> str:
    # JSON string escapes are TOML basic-string escapes; TOML also forbids a raw DEL.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list) and not any(isinstance(v, dict) for v in value):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {value!r} into the config: use a string, number or boolean")


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def render_toml(data: dict[str, Any]) -> str:
    """TOML for a validated config: one table per section, arrays of tables after its keys."""
    out = [HEADER]
    order = [s for s in SECTIONS if s in data] + [s for s in data if s not in SECTIONS]
    for section, table in ((s, data[s]) for s in order):
        plain = {k: v for k, v in table.items() if not _is_tables(v)}
        out.append(f"\n[{_key(section)}]\n")
        out += [f"{_key(k)} = {_value(v)}\n" for k, v in plain.items()]
        for k, items in table.items():
            if _is_tables(items):
                for item in items:
                    out.append(f"\n[[{_key(section)}.{_key(k)}]]\n")
                    out += [f"{_key(ik)} = {_value(iv)}\n" for ik, iv in item.items()]
    text = "".join(out)
    if tomllib.loads(text) != data:  # the file must say exactly what was validated
        raise ConfigError("internal error: the config did not survive writing; report this")
    return text


def _is_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def parse_compartment(text: str) -> dict[str, int]:
    """``NUMBER:RELAY_PIN:SENSOR_PIN`` -> a [[locker.compartments]] table (checked later)."""
    parts = text.split(":")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"{text!r}: write NUMBER:RELAY_PIN:SENSOR_PIN, e.g. 1:5:6 (BCM pins)")
    number, relay, sensor = (int(p) for p in parts)
    return {"number": number, "relay_pin": relay, "sensor_pin": sensor}


def build_config(
    target: Target,
    answers: Path | None,
    flags: dict[str, Any],
    compartments: list[dict[str, int]],
    sim: bool,
) -> ConfigPlan:
    """Merge answers, existing file and flags; validate with kiosk.config.parse_config."""
    existing = target.path(CONFIG_PATH)
    given = {dest: v for dest, v in flags.items() if dest in FLAG_KEYS and v is not None}
    overrides = bool(given or compartments or sim)
    if answers is not None:
        text, data = read_toml(answers)
        origin = str(answers)
    elif existing.exists():
        text, data = read_toml(existing)
        origin = CONFIG_PATH
    elif overrides:
        text, data, origin = "", {}, "flags"
    else:
        raise ConfigError(NO_CONFIG)
    if overrides and origin != "flags":
        origin += " and flags"
    for dest, value in given.items():
        section, key = FLAG_KEYS[dest]
        _table(data, section, origin)[key] = value
    if "server_pin" in given and _table(data, "server", origin).pop("pin_sha256", None):
        log.info("server.pin_sha256 dropped: --server-pin replaces it (server.pins)")
    if compartments:
        _table(data, "locker", origin)["compartments"] = compartments
    if sim:
        for section in ("scanner", "printer", "locker"):
            _table(data, section, origin)["kind"] = "sim"
    try:
        config = parse_config(data, origin)
    except ConfigError as exc:
        if origin == "flags":
            raise ConfigError(f"{exc}. {NO_CONFIG}") from None
        raise
    if overrides:
        text = render_toml(data)
    log.debug("config from %s: %s", origin, data)
    return ConfigPlan(text, config, origin)


def _table(data: dict[str, Any], section: str, origin: str) -> dict[str, Any]:
    table = data.setdefault(section, {})
    if not isinstance(table, dict):
        raise ConfigError(
            f"{origin}: {section} = {table!r}: must be a table, written as [{section}]"
        )
    return table
