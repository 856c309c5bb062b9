"""How the store server's refusals and the failures to reach it become the kiosk's errors, for
the HTTP client's calls (kiosk/sync/calls.py): an error answer (:func:`rejection`) is
``Rejected``/``RetryLater`` (or ``BadResponse`` without the server's error body), a failure to
get one at all (:func:`transport_error`) an ``Unreachable`` with a message a technician can act
on. Good answers' shapes are kiosk/sync/parse.py's.
"""

from __future__ import annotations

import ssl
import urllib.parse

import requests

from kiosk.errors import BadResponse, Rejected, RetryLater, StoreServerError, Unreachable
from kiosk.sync.transport import PinMismatch

__all__ = ["rejection", "server_says", "short", "transport_error"]


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
