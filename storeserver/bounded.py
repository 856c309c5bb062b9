"""Bounds on the free-form JSON the server stores (kiosk health, event details).

A kiosk token could send a 20 MB heartbeat and have it stored and served back to staff. Every
free-form value is now checked against explicit limits: nesting depth, keys per object, key and
string lengths, list lengths and the size of the whole value as stored (UTF-8 JSON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class JsonLimits:
    """The most a free-form JSON value may hold."""

    max_bytes: int  # the whole value as stored: compact UTF-8 JSON
    max_depth: int = 6
    max_keys: int = 64  # per object
    max_key_chars: int = 64
    max_string_chars: int = 1000
    max_items: int = 100  # per list
    # what a JSON reader keeps exactly (and SQLite's INTEGER holds); None: left to the model
    max_int: int | None = 2**53


def check_json(value: Any, limits: JsonLimits) -> Any:
    """``value`` unchanged if it is storable JSON within ``limits``; ValueError saying where
    and what the limit is otherwise."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(
            "contains an unpaired surrogate (\\ud800-\\udfff): send valid UTF-8 text"
        ) from None
    except ValueError:
        raise ValueError("contains NaN or Infinity, which JSON cannot carry: send null") from None
    _walk(value, limits, "", 0)
    if size > limits.max_bytes:
        raise ValueError(f"is {size} bytes as JSON, over the limit of {limits.max_bytes}")
    return value


def _walk(value: Any, limits: JsonLimits, where: str, depth: int) -> None:
    at = where or "the value"
    if depth > limits.max_depth:
        raise ValueError(f"{at} is nested deeper than {limits.max_depth} levels")
    if isinstance(value, str):
        if len(value) > limits.max_string_chars:
            raise ValueError(f"{at} is over {limits.max_string_chars} characters")
    elif isinstance(value, int) and not isinstance(value, bool):
        if limits.max_int is not None and abs(value) > limits.max_int:
            raise ValueError(f"{at} is beyond ±{limits.max_int}")
    elif isinstance(value, dict):
        if len(value) > limits.max_keys:
            raise ValueError(f"{at} has over {limits.max_keys} keys")
        for key, item in value.items():
            if len(key) > limits.max_key_chars:
                raise ValueError(f"a key of {at} is over {limits.max_key_chars} characters")
            _walk(item, limits, f"{where}.{key}" if where else key, depth + 1)
    elif isinstance(value, list):
        if len(value) > limits.max_items:
            raise ValueError(f"{at} has over {limits.max_items} items")
        for i, item in enumerate(value):
            _walk(item, limits, f"{where}[{i}]", depth + 1)
