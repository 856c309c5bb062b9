"""Receipts to JSON and back, so a receipt that could not be printed waits in the journal.

A queued receipt must come back exactly as it was built (same txn id, same balances, same
printed_at), so reprinting after paper is loaded hands the member the original. Decoding
re-runs each dataclass's own checks: a record altered on disk is refused, not printed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
from typing import Any

from kiosk.domain import receipts
from kiosk.errors import JournalError

CODEC_VERSION = 1

# Every kind that may be queued; the name is stored, so renaming a class needs an alias here.
KINDS: dict[str, type[receipts.Receipt]] = {
    cls.__name__: cls
    for cls in (
        receipts.RedemptionReceipt,
        receipts.PointsCashReceipt,
        receipts.WheelReceipt,
        receipts.VoucherReceipt,
        receipts.CouponReceipt,
        receipts.RestockSlip,
        receipts.SelfTestPage,
    )
}


class MalformedQueuedReceipt(JournalError):
    """A queued receipt record that does not decode; it is kept for a technician."""


def encode_receipt(receipt: receipts.Receipt) -> dict[str, Any]:
    """A JSON-able dict for the journal."""
    name = type(receipt).__name__
    if name not in KINDS:
        raise TypeError(f"{name} is not a queueable receipt kind")
    return {"v": CODEC_VERSION, "kind": name, "fields": _encode(receipt)}


def decode_receipt(record: Any) -> receipts.Receipt:
    """The receipt in ``record``; MalformedQueuedReceipt if anything is off."""
    if not isinstance(record, dict) or record.get("v") != CODEC_VERSION:
        raise MalformedQueuedReceipt(f"queued receipt record has no version {CODEC_VERSION}")
    cls = KINDS.get(record.get("kind"))  # type: ignore[arg-type]
    if cls is None:
        raise MalformedQueuedReceipt(f"queued receipt of unknown kind {record.get('kind')!r}")
    try:
        return _decode(cls, record.get("fields"))
    except (TypeError, ValueError, KeyError) as exc:
        raise MalformedQueuedReceipt(
            f"queued {cls.__name__} does not decode ({exc}): print it from the journal by hand"
        ) from exc


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    raise TypeError(f"cannot encode {type(value).__name__} in a receipt")


def _decode(tp: Any, raw: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if raw is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]
        return _decode(inner, raw)
    if origin is tuple:
        item_type = typing.get_args(tp)[0]
        if not isinstance(raw, list):
            raise TypeError(f"expected a list, got {type(raw).__name__}")
        return tuple(_decode(item_type, v) for v in raw)
    if dataclasses.is_dataclass(tp):
        if not isinstance(raw, dict):
            raise TypeError(f"{tp.__name__} must be an object")
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        if set(raw) - names:
            raise TypeError(f"{tp.__name__} has no field(s) {sorted(set(raw) - names)}")
        return tp(**{k: _decode(hints[k], v) for k, v in raw.items()})
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(raw)
    if tp is dt.datetime:
        return dt.datetime.fromisoformat(_str(raw))
    if tp is dt.date:
        return dt.date.fromisoformat(_str(raw))
    if tp is bool or tp is str:
        if type(raw) is not tp:
            raise TypeError(f"expected {tp.__name__}, got {type(raw).__name__}")
        return raw
    if tp is int:
        if type(raw) is not int:
            raise TypeError(f"expected int, got {type(raw).__name__}")
        return raw
    raise TypeError(f"cannot decode {tp!r}")


def _str(raw: Any) -> str:
    if not isinstance(raw, str):
        raise TypeError(f"expected an ISO date string, got {type(raw).__name__}")
    return raw
