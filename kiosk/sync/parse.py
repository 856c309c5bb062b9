"""Reading what comes back from the store server, for the HTTP client (kiosk/sync/client.py).

A body of the expected shape becomes a value (:func:`redemption`, :func:`event_results`, ...) or
the checked dict; anything else raises :class:`ShapeError`, which the client turns into
:class:`BadResponse`. An error answer (:func:`rejection`) and a failure to get one at all
(:func:`transport_error`) become the kiosk's :class:`~kiosk.errors.StoreServerError` with a
message a technician can act on.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import ssl
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import requests

from kiosk.domain.receipts import PrizeKind
from kiosk.domain.wheel import HEX64, Prize, Segment, Wheel
from kiosk.errors import BadResponse, Rejected, RetryLater, StoreServerError, Unreachable
from kiosk.ports import (
    EventResult,
    Payment,
    PaymentStatus,
    Redemption,
    RedemptionState,
    StaffIdentity,
)
from kiosk.sync.transport import PinMismatch

__all__ = [
    "BadResponse",
    "ShapeError",
    "catalog",
    "event_results",
    "keys",
    "member",
    "member_session",
    "payment",
    "prize",
    "redemption",
    "rejection",
    "server_says",
    "short",
    "staff",
    "transport_error",
    "wheel",
]


# ---- response shapes ----------------------------------------------------------------------------


E = TypeVar("E", bound=enum.Enum)


class ShapeError(StoreServerError):
    """The body does not have the expected shape (the client makes it a BadResponse)."""


def _obj(data: object) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ShapeError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _get(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], optional: bool = False):
    if key not in data or data[key] is None:
        if optional:
            return None
        raise ShapeError(f"missing {key!r}")
    value = data[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:  # JSON true is not a number of points
        raise ShapeError(f"{key!r} is not a {kinds[0].__name__}")
    if not isinstance(value, kinds):
        raise ShapeError(f"{key!r} is not a {kinds[0].__name__}")
    return value


def _enum(d: Mapping[str, Any], key: str, kind: type[E]) -> E:
    value = _get(d, key, str)
    try:
        return kind(value)
    except ValueError:
        raise ShapeError(
            f"{key!r} is {value[:40]!r}, not one of the kiosk's {kind.__name__}"
        ) from None


def redemption(data: object) -> Redemption:
    """A redemption (hold, capture, void, spin) as the server answers it; a spin's prize and
    a cash part are parsed too (a spin without a usable prize is garbage)."""
    d = _obj(data)
    kind = _get(d, "kind", str)
    pay = _get(d, "payment", dict, optional=True)
    raw_prize = _get(d, "prize", dict, optional=True)
    if kind == "spin" and raw_prize is None:
        raise ShapeError("a spin without its 'prize'")
    return Redemption(
        txn_id=_get(d, "txn_id", str),
        kind=kind,
        state=_enum(d, "state", RedemptionState),
        member_id=_get(d, "member_id", str),
        sku=_get(d, "sku", str, optional=True),
        compartment=_get(d, "compartment", int, optional=True),
        points=_get(d, "points", int),
        cash_cents=_get(d, "cash_cents", int),
        hold_expires_at=_get(d, "hold_expires_at", str, optional=True),
        void_reason=_get(d, "void_reason", str, optional=True),
        coupon_code=_get(d, "coupon_code", str, optional=True),
        payment=payment(pay) if pay is not None else None,
        prize=prize(raw_prize) if raw_prize is not None else None,
        balance=_get(d, "balance", int, optional=True),
        raw=d,
        hold_seq=_get(d, "hold_seq", int, optional=True),
    )


def payment(data: object) -> Payment:
    """The cash part of a hold."""
    d = _obj(data)
    return Payment(
        id=_get(d, "id", str),
        status=_enum(d, "status", PaymentStatus),
        amount_cents=_get(d, "amount_cents", int),
        pay_url=_get(d, "pay_url", str, optional=True),
    )


def prize(data: object) -> Prize:
    """A spin's draw: the segment, what it gives, and the day's seed commitment."""
    d = _obj(data)
    day = _day(_get(d, "day", str))
    return Prize(
        wheel_id=_get(d, "wheel_id", str),
        segment_idx=_count(d, "segment_idx"),
        kind=_enum(d, "kind", PrizeKind),
        label_zh=_get(d, "label_zh", str),
        label_en=_get(d, "label_en", str),
        points=_count(d, "points"),
        day=day,
        commitment=_hex64(d, "commitment"),
        coupon_value_cents=_get(d, "coupon_value_cents", int, optional=True),
    )


def _count(d: Mapping[str, Any], key: str) -> int:
    value = _get(d, key, int)
    if value < 0:
        raise ShapeError(f"{key!r} is negative")
    return value


def _day(text: str) -> str:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        raise ShapeError(f"day {text[:20]!r} is not a date") from None
    return text


def _hex64(d: Mapping[str, Any], key: str) -> str:
    value = _get(d, key, str)
    if not HEX64.fullmatch(value):
        raise ShapeError(f"{key!r} is not a SHA-256 in lowercase hex")
    return value


def keys(**kinds: type) -> Callable[[object], dict[str, Any]]:
    """A parser that checks an object has these keys with these types, and returns it."""

    def parse(data: object) -> dict[str, Any]:
        d = _obj(data)
        for key, kind in kinds.items():
            _get(d, key, kind)
        return d

    return parse


def catalog(data: object) -> dict[str, Any]:
    """``/v1/catalog``: a version and items, each with the fields the kiosk relies on."""
    d = keys(version=str, items=list)(data)
    for item in d["items"]:
        keys(sku=str, kind=str, points=int, cash_cents=int, compartments=list)(item)
    return d


def wheel(data: object) -> Wheel:
    """A wheel (``GET /v1/wheels/{id}``): cost, limit, segments with odds, rules, the seed
    commitments by day, and ``spins_left`` when asked for a member."""
    d = _obj(data)
    commitments = _get(d, "commitments", dict)
    for day in commitments:
        _hex64(commitments, _day(day))
    segments = tuple(_segment(s) for s in _get(d, "segments", list))
    if [s.idx for s in segments] != sorted({s.idx for s in segments}):
        raise ShapeError("segment indexes are not unique and in order")
    spins_left = _get(d, "spins_left", int, optional=True)
    return Wheel(
        id=_get(d, "id", str),
        name_zh=_get(d, "name_zh", str),
        name_en=_get(d, "name_en", str),
        cost_points=_count(d, "cost_points"),
        daily_limit=_count(d, "daily_limit"),
        segments=segments,
        rules_zh=_get(d, "rules_zh", str, optional=True) or "",
        rules_en=_get(d, "rules_en", str, optional=True) or "",
        commitments=dict(commitments),
        spins_left=max(0, spins_left) if spins_left is not None else None,
        seeds_url=_get(d, "seeds_url", str, optional=True),
    )


def _segment(data: object) -> Segment:
    d = _obj(data)
    odds = _get(d, "odds", (float, int))
    if not 0.0 <= odds <= 1.0:
        raise ShapeError(f"odds {odds!r} is not a probability")
    return Segment(
        idx=_count(d, "idx"),
        label_zh=_get(d, "label_zh", str),
        label_en=_get(d, "label_en", str),
        prize_kind=_enum(d, "prize_kind", PrizeKind),
        prize_points=_count(d, "prize_points"),
        prize_sku=_get(d, "prize_sku", str, optional=True),
        weight=_count(d, "weight"),
        odds=float(odds),
        stock=_get(d, "stock", int, optional=True),
    )


def member(data: object) -> dict[str, Any]:
    """A member view (checked in full by kiosk.domain.member_view); its ``member_session``
    becomes the session token (a str) or None."""
    d = keys(member_id=str, tier=str, balance=int)(data)
    for key in ("tier_threshold", "next_tier_threshold"):  # the tier bar counts between them
        _get(d, key, int, optional=True)
    for key in ("tier_en", "next_tier_en"):
        _get(d, key, str, optional=True)
    return {**d, "member_session": member_session(d)}


_SESSION_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")


def member_session(data: Mapping[str, Any]) -> str | None:
    """The member session token of a resolve answer (``member_session.token``), or None when
    the answer has none usable (an older server): holds then ask the member to scan again."""
    session = data.get("member_session")
    token = session.get("token") if isinstance(session, dict) else None
    if isinstance(token, str) and _SESSION_TOKEN.fullmatch(token):
        return token
    return None


def event_results(data: object) -> list[EventResult]:
    """The results of an event upload."""
    d = keys(results=list)(data)
    out = []
    for r in d["results"]:
        r = keys(event_id=str, status=str)(r)
        out.append(
            EventResult(
                r["event_id"],
                r["status"],
                _get(r, "reason", str, optional=True),
                _get(r, "message", str, optional=True),
            )
        )
    return out


_STAFF_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


def staff(data: object) -> StaffIdentity:
    """The staff member the server accepted a badge and PIN for."""
    d = keys(staff_id=str, name=str)(data)
    if not _STAFF_ID.fullmatch(d["staff_id"]):
        raise ShapeError(f"staff_id {d['staff_id'][:40]!r} is not a staff id")
    if not d["name"].strip() or len(d["name"]) > 64:
        raise ShapeError("name is empty or longer than 64 characters")
    return StaffIdentity(d["staff_id"], d["name"])


# ---- refusals and failures ----------------------------------------------------------------------


def rejection(resp: requests.Response, what: str, base_url: str) -> StoreServerError:
    """A 4xx answer as Rejected (RetryLater with a Retry-After), or BadResponse without the
    store server's error body."""
    try:
        body = resp.json()
        code, message = body["error"], body["message"]
        if not isinstance(code, str) or not isinstance(message, str):
            raise TypeError
    except (ValueError, KeyError, TypeError, RecursionError):
        return BadResponse(
            f"{base_url} answered {what} with HTTP {resp.status_code} but not with the "
            "store server's error body: check server.url (another web server or a proxy "
            "may be answering)"
        )
    text = f"store server refused {what}: {message} ({code}, HTTP {resp.status_code})"
    retry_after = _retry_after_s(resp)
    if retry_after is not None:
        return RetryLater(resp.status_code, code, text, retry_after)
    return Rejected(resp.status_code, code, text)


def _pin_mismatch(exc: BaseException) -> str | None:
    """The message of the PinMismatch (kiosk/sync/transport.py) behind a requests SSLError:
    requests wraps urllib3's MaxRetryError, whose ``reason`` it is."""
    for inner in exc.args:
        reason = getattr(inner, "reason", inner)
        if isinstance(reason, PinMismatch):
            return str(reason)
    return None


def transport_error(
    exc: requests.RequestException,
    what: str,
    idempotent: bool,
    *,
    base_url: str,
    pin_sha256: str | None,
    timeout: tuple[float, float],
) -> tuple[StoreServerError, bool]:
    """Map a requests exception to our error, and whether a retry may help."""
    host = urllib.parse.urlsplit(base_url).netloc
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        mismatch = _pin_mismatch(exc)
        if mismatch is not None:
            return Unreachable(mismatch), False
        if "Fingerprints did not match" in text:
            return Unreachable(
                f"the certificate of {host} does not match the pinned fingerprint "
                f"(server.pin_sha256 = {pin_sha256}): if the store renewed its "
                "certificate, update pin_sha256; otherwise something is intercepting the "
                "connection"
            ), False
        return Unreachable(
            f"TLS verification of {host} failed ({short(exc)}): set server.ca_bundle to the "
            "store's CA certificate, and check the kiosk clock"
        ), False
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Unreachable(
            f"store server {host} did not accept a connection within {timeout[0]} s "
            f"({what}): check the network and that the server is running"
        ), True
    if isinstance(exc, requests.exceptions.ReadTimeout):
        extra = "" if idempotent else " (it may have acted on it)"
        return Unreachable(
            f"store server {host} did not answer {what} within {timeout[1]} s{extra}: "
            "check the server's load and the network"
        ), True
    if isinstance(
        exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError
    ):
        return BadResponse(
            f"store server {host} sent a broken answer to {what} ({short(exc)}): "
            "check the network and any proxy in between"
        ), True
    if isinstance(exc, requests.exceptions.ConnectionError):
        if (
            "NameResolutionError" in text
            or "Name or service not known" in text
            or "getaddrinfo" in text
        ):
            return Unreachable(
                f"cannot resolve the store server's name {host}: check DNS and server.url"
            ), True
        if "Connection refused" in text or "Errno 111" in text:
            return Unreachable(
                f"store server {host} refused the connection: check that it is running "
                "and that server.url has the right port"
            ), True
        return Unreachable(
            f"cannot reach the store server {host} ({short(exc)}): check the network"
        ), True
    return Unreachable(f"request {what} to {host} failed ({short(exc)}): check server.url"), False


def short(exc: BaseException, limit: int = 200) -> str:
    """The innermost reason of a requests error, without urllib3's pool and retry wrapping."""
    inner: BaseException = exc
    for _ in range(6):
        nxt = getattr(inner, "reason", None)  # urllib3's MaxRetryError
        if (
            not isinstance(nxt, BaseException)
            and inner.args
            and isinstance(inner.args[0], BaseException)
        ):
            nxt = inner.args[0]
        if not isinstance(nxt, BaseException):
            break
        inner = nxt
    if isinstance(inner, ssl.SSLCertVerificationError):
        text = f"certificate verify failed: {inner.verify_message}"
    else:
        text = str(inner) or type(inner).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _retry_after_s(resp: requests.Response) -> int | None:
    """A ``Retry-After`` of whole seconds (capped at a day); the HTTP-date form is ignored."""
    value = resp.headers.get("Retry-After", "").strip()
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        return None
    return min(int(value), 86_400)


def server_says(resp: requests.Response) -> str:
    """`` (the server's message)`` from an error body, or nothing."""
    try:
        body = resp.json()
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            return f" ({body['message'][:200]})"
    except (ValueError, RecursionError):
        pass
    return ""
