"""How one store server call is made: attempts over the client's ``requests.Session``, what
each outcome means, and the retries in between (kiosk/sync/client.py builds the calls).

- :func:`attempt` is one HTTP exchange: the server's response, whatever its status, or a
  :class:`Failed` saying why there is none (connection, TLS, timeout, a broken answer) and
  whether another attempt may help.
- :func:`classify` turns a response into the call's result or the error to raise:
  ``Rejected`` (4xx with the server's error body), ``BadResponse`` (garbage, a redirect),
  ``Unreachable`` (a body that broke off); :func:`server_failed` words a 5xx.
- :func:`perform` retries transient failures and 5xx answers of idempotent calls with the
  :class:`~kiosk.sync.transport.RetryPolicy`'s backoff, within the call's time budget.

The wording of errors from bodies and transport exceptions is kiosk/sync/refusals.py's.
"""

from __future__ import annotations

import http.client
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
import urllib3

from kiosk.errors import Rejected, StoreServerError, Unreachable
from kiosk.sync import parse, refusals
from kiosk.sync.parse import BadResponse
from kiosk.sync.transport import RetryPolicy

__all__ = ["Call", "Endpoint", "Failed", "attempt", "classify", "perform", "server_failed"]

T = TypeVar("T")
Timeouts = tuple[float, float]  # (connect, read) seconds


@dataclass(frozen=True)
class Call:
    """One API call as the client asks for it. ``headers`` are added to the session's;
    ``stream`` leaves the body unread for a reader."""

    method: str
    path: str
    json: Any = None
    params: Mapping[str, str] | None = None
    headers: Mapping[str, str] | None = None
    auth: bool = True  # with the session's kiosk token; False sends none
    accept: str | None = None  # instead of the session's application/json
    retry: bool = False  # idempotent: transient failures and 5xx are tried again
    within_s: float | None = None  # the whole call's budget, retries included
    stream: bool = False

    @property
    def what(self) -> str:
        return f"{self.method} {self.path}"

    def sent_headers(self) -> dict[str, str | None] | None:
        """The headers to merge into the session's (None removes one), or None."""
        sent: dict[str, str | None] = {} if self.auth else {"Authorization": None}
        sent.update(self.headers or {})
        if self.accept is not None:
            sent["Accept"] = self.accept
        return sent or None


@dataclass(frozen=True)
class Endpoint:
    """Where calls go and how long they may take: the client's settings at call time."""

    base_url: str
    timeout: Timeouts
    verify: str | bool  # a CA bundle's path, or True: the system CAs (never False)
    pin_sha256: str | None  # deprecated certificate pin, named in its mismatch message
    retry: RetryPolicy
    sleep: Callable[[float], None]
    rng: random.Random


@dataclass(frozen=True)
class Failed:
    """An attempt that got no response: the error to raise, and whether to try again."""

    error: StoreServerError
    transient: bool


# ---- one attempt --------------------------------------------------------------------------------


def attempt(
    session: requests.Session, endpoint: Endpoint, call: Call, timeout: Timeouts, sent: Any
) -> requests.Response | Failed:
    """One HTTP exchange: the response (any status), or why there is none. ``timeout`` is
    what the messages quote, ``sent`` what requests gets (the tuple, or a urllib3.Timeout)."""
    try:
        return session.request(
            call.method,
            endpoint.base_url + call.path,
            json=call.json,
            params=call.params,
            headers=call.sent_headers(),
            timeout=sent,
            verify=endpoint.verify,
            allow_redirects=False,
            stream=call.stream,
        )
    except requests.RequestException as exc:
        error, transient = refusals.transport_error(
            exc,
            call.what,
            call.retry,
            base_url=endpoint.base_url,
            pin_sha256=endpoint.pin_sha256,
            timeout=timeout,
        )
        return Failed(error, transient)
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError, UnicodeError) as exc:
        # Not wrapped by requests (e.g. a malformed URL or header): final, like a TLS failure.
        return Failed(
            Unreachable(
                f"request {call.what} to {endpoint.base_url} failed ({refusals.short(exc)}): "
                "check server.url"
            ),
            transient=False,
        )


def _timeouts(base: Timeouts, deadline: float | None) -> tuple[Timeouts, Any]:
    """This attempt's (connect, read) timeouts and what requests is given: ``base``, or cut
    to what is left before ``deadline``."""
    if deadline is None:
        return base, base
    left = round(max(0.05, deadline - time.monotonic()), 2)
    timeout = (min(base[0], left), min(base[1], left))
    # total: the connect and the wait for the answer together within what is left (the tuple
    # alone allows a slow connect plus a full read timeout after it; a server dripping its
    # answer byte by byte is bounded by the session's give-up)
    return timeout, urllib3.Timeout(connect=timeout[0], read=timeout[1], total=left)


# ---- what a response means ----------------------------------------------------------------------


def server_failed(resp: requests.Response, what: str, base_url: str, attempts: int) -> Unreachable:
    """A 5xx answer after ``attempts`` attempts (the server may be back later)."""
    tried = f" (after {attempts} attempts)" if attempts > 1 else ""
    return Unreachable(
        f"store server at {base_url} failed on {what} with HTTP "
        f"{resp.status_code}{tried}{refusals.server_says(resp)}: check the store server's log"
    )


def classify(
    resp: requests.Response,
    what: str,
    base_url: str,
    *,
    parser: Callable[[object], T] | None = None,
    read: Callable[[requests.Response], T] | None = None,
) -> T:
    """The result of a response below 500, or the error it is: a 2xx body is JSON given to
    ``parser``, or, with ``read``, streamed: ``read`` takes the response and reads what it
    wants of the body (a picture, bounded)."""
    if 400 <= resp.status_code < 500:
        raise refusals.rejection(resp, what, base_url)
    if not 200 <= resp.status_code < 300:
        resp.close()
        where = resp.headers.get("Location", "")
        raise BadResponse(
            f"store server at {base_url} answered {what} with HTTP "
            f"{resp.status_code}{' to ' + where if where else ''}: check server.url "
            "(scheme, host and port of the store server itself)"
        )
    if read is not None:
        try:
            return read(resp)
        except requests.RequestException as exc:  # the body broke off or timed out
            raise Unreachable(
                f"store server at {base_url} broke off its answer to {what} "
                f"({refusals.short(exc)}): check the network; retrying later"
            ) from None
        finally:
            resp.close()
    assert parser is not None
    try:
        return parser(resp.json())
    except (ValueError, parse.ShapeError, RecursionError) as exc:
        raise BadResponse(
            f"store server at {base_url} answered garbage to {what} "
            f"({refusals.short(exc)}): check that server.url points at the store server"
        ) from None


# ---- the call, retried --------------------------------------------------------------------------


def perform(
    session: requests.Session,
    endpoint: Endpoint,
    call: Call,
    *,
    parser: Callable[[object], T] | None = None,
    read: Callable[[requests.Response], T] | None = None,
) -> T:
    """The call's result; an idempotent call (``call.retry``) is tried up to
    ``endpoint.retry.attempts`` times on transient failures and 5xx answers, with backoff.
    ``call.within_s`` bounds the whole call: each attempt's timeouts are cut to what is left
    and no retry starts after it. A call with ``auth`` on a session without the kiosk token
    is refused (``not_enrolled``) without a request."""
    if call.auth and "Authorization" not in session.headers:
        raise Rejected(
            401,
            "not_enrolled",
            f"{call.what}: this kiosk has no store server token: enroll it (kiosk-provision)",
        )
    deadline = None if call.within_s is None else time.monotonic() + call.within_s
    attempts = max(1, endpoint.retry.attempts) if call.retry else 1
    for number in range(1, attempts + 1):
        last = number == attempts
        timeout, sent = _timeouts(endpoint.timeout, deadline)
        got = attempt(session, endpoint, call, timeout, sent)
        if isinstance(got, Failed):
            if got.transient and not last and _backoff(endpoint, number, deadline):
                continue
            raise got.error from None
        if got.status_code >= 500:
            got.close()  # a streamed body left unread would hold its connection
            if not last and _backoff(endpoint, number, deadline):
                continue
            raise server_failed(got, call.what, endpoint.base_url, number)
        return classify(got, call.what, endpoint.base_url, parser=parser, read=read)
    raise AssertionError("unreachable")  # pragma: no cover - the loop always returns/raises


def _backoff(endpoint: Endpoint, number: int, deadline: float | None) -> bool:
    """Wait before attempt ``number + 1``; False (no wait) when it would start past
    ``deadline``."""
    delay = endpoint.retry.delay(number, endpoint.rng)
    if deadline is not None and time.monotonic() + delay >= deadline:
        return False
    endpoint.sleep(delay)
    return True
