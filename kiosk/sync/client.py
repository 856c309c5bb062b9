"""The kiosk's HTTP client for the store server (docs/api/openapi.json, docs/kiosk-sync.md).

Every failure leaves as a :class:`~kiosk.errors.StoreServerError` whose message a technician
can act on; no requests, urllib3 or JSON exception escapes. Only idempotent calls are retried.
What the answers mean (shapes, error bodies, transport failures) is kiosk/sync/parse.py.
``BadResponse`` and ``RetryLater`` are importable from here as before.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import logging
import os
import random
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import requests
import urllib3

from kiosk.config import ServerSection
from kiosk.domain.member_codes import MAX_KEYS
from kiosk.domain.wheel import Wheel
from kiosk.errors import JournalError, Rejected, RetryLater, Unreachable
from kiosk.ports import Enrollment, EventResult, OutboxEvent, Redemption, StaffIdentity
from kiosk.storage.atomic import write_file_atomic
from kiosk.storage.pictures import MAX_PICTURE_BYTES
from kiosk.storage.server_keys import write_public_keys
from kiosk.sync import parse
from kiosk.sync.parse import BadResponse
from kiosk.sync.pictures import PICTURE_TYPES, read_picture_body
from kiosk.sync.transport import PinningAdapter, RetryPolicy

__all__ = [
    "BadResponse",
    "Enrollment",
    "EventResult",
    "OutboxEvent",
    "Redemption",
    "RetryLater",
    "RetryPolicy",
    "StaffIdentity",
    "StoreServerClient",
]

log = logging.getLogger(__name__)
MAX_EVENTS_PER_CALL = 200  # the server's EventsRequest.maxItems
MEMBER_SESSION_HEADER = "X-Member-Session"  # the session resolve_member's answer carries
T = TypeVar("T")


class StoreServerClient(requests.Session):
    """The store server's kiosk API over one keep-alive session.

    TLS verification is always on (``ca_bundle`` or the system CAs); ``pins`` also pin the
    server's public key (SPKI SHA-256, kiosk/sync/transport.py), ``pin_sha256`` (deprecated)
    its certificate. Environment proxies, ``REQUESTS_CA_BUNDLE`` and ``.netrc`` are ignored
    (``trust_env = False``): what the kiosk trusts is in its config only.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        public_key_file: str | os.PathLike[str] | None = None,
        ca_bundle: str | os.PathLike[str] | None = None,
        pin_sha256: str | None = None,
        pins: Sequence[str] = (),
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        self.trust_env = False
        self.base_url = base_url.rstrip("/")
        self.token_file = Path(token_file) if token_file is not None else None
        self.public_key_file = Path(public_key_file) if public_key_file is not None else None
        self._verify: str | bool = str(ca_bundle) if ca_bundle else True
        self.verify = self._verify
        self.pin_sha256 = pin_sha256.lower().replace(":", "") if pin_sha256 else None
        self.pins = tuple(pins)
        self.timeout = (connect_timeout_s, read_timeout_s)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.headers["User-Agent"] = "loyalty-kiosk"
        self.headers["Accept"] = "application/json"
        if self.pins or self.pin_sha256:
            self.mount("https://", PinningAdapter(self.pins, fingerprint=self.pin_sha256))
        if token is None and self.token_file is not None:
            token = self._read_token()
        self.token = token

    @classmethod
    def from_config(
        cls,
        server: ServerSection,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> StoreServerClient:
        """A client from the [server] section; the token is read from ``token_file`` if present."""
        if server.pin_sha256:
            log.warning(
                "server.pin_sha256 is deprecated: it pins the store's certificate, so the kiosk "
                "refuses the server after every certificate renewal; replace it with "
                'server.pins = ["sha256/..."] (print the pin with `storeserver tls-pin '
                "server.pem`), which pins the server's key"
            )
        return cls(
            server.url,
            token_file=server.token_file,
            public_key_file=server.public_key_file,
            ca_bundle=server.ca_bundle,
            pin_sha256=server.pin_sha256,
            pins=server.pins,
            connect_timeout_s=server.connect_timeout_s,
            read_timeout_s=server.read_timeout_s,
            retry=retry,
            sleep=sleep,
            rng=rng,
        )

    # ---- token ------------------------------------------------------------------------------
    @property
    def token(self) -> str | None:
        return self._token

    @token.setter
    def token(self, value: str | None) -> None:
        self._token = value or None
        if self._token:
            self.headers["Authorization"] = f"Bearer {self._token}"
        else:
            self.headers.pop("Authorization", None)

    def _read_token(self) -> str | None:
        assert self.token_file is not None
        try:
            return self.token_file.read_text(encoding="ascii").strip() or None
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise JournalError(
                f"cannot read the kiosk token {self.token_file}: {exc}: "
                "check the state folder, or re-enroll the kiosk"
            ) from None

    # ---- kiosk calls ------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``GET /v1/health``: liveness and the server's clock (no token needed)."""
        return self._call(
            "GET",
            "/v1/health",
            retry=True,
            auth=False,
            parser=parse.keys(status=str, server_time=str),
        )

    def enroll(self, enrollment_code: str, kiosk_id: str) -> Enrollment:
        """Exchange a one-time code for a token; stores the token (0600) and the public keys.

        Never retried: the code works once, so a retry after a lost answer would be refused.
        """
        data = self._call(
            "POST",
            "/v1/kiosks/enroll",
            json={"enrollment_code": enrollment_code, "kiosk_id": kiosk_id},
            retry=False,
            auth=False,
            parser=parse.keys(kiosk_id=str, token=str, public_key=str, server_time=str),
        )
        keys = _enrolled_keys(data)
        if not keys or not data["token"].isascii() or not data["token"].strip():
            raise BadResponse(
                f"store server at {self.base_url} answered garbage to enrollment "
                "(bad token or public key): check server.url points at the store server"
            )
        token = data["token"].strip()
        try:
            if self.token_file is not None:
                self.token_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                write_file_atomic(self.token_file, token.encode("ascii") + b"\n", 0o600)
            if self.public_key_file is not None:
                write_public_keys(self.public_key_file, [_b64(k) for k in keys])
        except OSError as exc:
            raise JournalError(
                f"enrolled, but cannot store the kiosk token or key ({exc}): make the state "
                "folder writable, then enroll again with a new code"
            ) from None
        self.token = token
        return Enrollment(data["kiosk_id"], keys[0], data["server_time"], keys)

    @property
    def lookup_budget_s(self) -> float:
        """How long a member lookup may take in all, retries included: the read timeout. A
        member stands at the screen while it runs (a server that takes the connection and
        never answers costs one read timeout, not four)."""
        return self.timeout[1]

    def resolve_member(self, code: str) -> dict[str, Any]:
        """``POST /v1/members/resolve``: the member view for a scanned code.

        Retried while ``lookup_budget_s`` lasts: the server lets the same kiosk resolve the
        same code again.
        """
        return self._call(
            "POST", "/v1/members/resolve", json={"code": code}, retry=True, parser=parse.member,
            within_s=self.lookup_budget_s,
        )  # fmt: skip

    def catalog(self) -> dict[str, Any]:
        """``GET /v1/catalog``: items with this kiosk's compartments and stock, and a version."""
        return self._call("GET", "/v1/catalog", retry=True, parser=parse.catalog)

    def picture(self, name: str, *, max_bytes: int = MAX_PICTURE_BYTES) -> bytes:
        """``GET /v1/pictures/{name}``: an item picture's bytes, PNG or JPEG by its
        Content-Type; a body over ``max_bytes`` is refused (BadResponse) unread. The bytes are
        not checked further here: the picture cache verifies them before they are kept."""
        what = f"store server at {self.base_url} answered GET /v1/pictures/{name}"

        def read(resp: requests.Response) -> bytes:
            return read_picture_body(resp, max_bytes, what)

        return self._call(
            "GET", f"/v1/pictures/{_seg(name)}", retry=True, read=read,
            accept=", ".join(PICTURE_TYPES),
        )  # fmt: skip

    def create_redemption(
        self,
        txn_id: str,
        member_id: str,
        sku: str,
        points: int,
        *,
        compartment: int | None = None,
        cash_cents: int = 0,
        member_session: str | None = None,
    ) -> Redemption:
        """``POST /v1/redemptions``: hold points and stock for the member of
        ``member_session`` (header ``X-Member-Session``); idempotent by ``txn_id``."""
        body = {
            "txn_id": txn_id,
            "member_id": member_id,
            "sku": sku,
            "points": points,
            "compartment": compartment,
            "cash_cents": cash_cents,
        }
        return self._txn(
            "POST", "/v1/redemptions", txn_id, json=body, headers=_session(member_session)
        )

    def get_redemption(self, txn_id: str) -> Redemption:
        return self._txn("GET", f"/v1/redemptions/{_seg(txn_id)}", txn_id)

    def capture(self, txn_id: str) -> Redemption:
        """Commit after the door sensor saw the gift taken; idempotent."""
        return self._txn("POST", f"/v1/redemptions/{_seg(txn_id)}/capture", txn_id)

    def void(self, txn_id: str, reason: str) -> Redemption:
        """Release the hold (points, stock, payment); idempotent."""
        return self._txn(
            "POST", f"/v1/redemptions/{_seg(txn_id)}/void", txn_id, json={"reason": reason}
        )

    def spin(
        self,
        txn_id: str,
        member_id: str,
        wheel_id: str,
        *,
        cost_points: int | None = None,
        member_session: str | None = None,
    ) -> Redemption:
        """``POST /v1/wheel/spins``: hold the cost and draw the prize for the member of
        ``member_session``; idempotent by ``txn_id``. ``cost_points``, the cost the member was
        shown: another is refused before the draw."""
        body: dict[str, Any] = {"txn_id": txn_id, "member_id": member_id, "wheel_id": wheel_id}
        if cost_points is not None:
            body["cost_points"] = cost_points
        return self._txn(
            "POST", "/v1/wheel/spins", txn_id, json=body, headers=_session(member_session)
        )

    def wheel_info(
        self, wheel_id: str, member_id: str | None = None, member_session: str | None = None
    ) -> Wheel:
        """Segments, odds at this kiosk, rules, commitments (and ``spins_left`` for a member,
        which needs that member's session)."""
        params = {"member_id": member_id} if member_id is not None else None
        return self._call(
            "GET", f"/v1/wheels/{_seg(wheel_id)}", params=params, retry=True, parser=parse.wheel,
            headers=_session(member_session),
        )  # fmt: skip

    def send_events(self, events: Iterable[OutboxEvent]) -> list[EventResult]:
        """Upload outbox events (in batches the server accepts); each applies once by event_id."""
        pending = [
            {"event_id": e.event_id, "kind": e.kind, "at": e.at, "payload": dict(e.payload)}
            for e in events
        ]
        results: list[EventResult] = []
        for start in range(0, len(pending), MAX_EVENTS_PER_CALL):
            batch = pending[start : start + MAX_EVENTS_PER_CALL]
            got = self._call(
                "POST",
                "/v1/kiosks/events",
                json={"events": batch},
                retry=True,
                parser=parse.event_results,
            )
            if sorted(r.event_id for r in got) != sorted(e["event_id"] for e in batch):
                raise BadResponse(
                    f"store server at {self.base_url} answered garbage to an event upload "
                    "(results do not match the events sent): check the store server version"
                )
            results.extend(got)
        return results

    def heartbeat(self, health: Mapping[str, Any]) -> dict[str, Any]:
        """Report the kiosk's health; returns the server's clock (``server_time``) and the
        store's public keys (``public_keys``, checked by the sync worker's heartbeat)."""
        return self._call(
            "POST",
            "/v1/kiosks/heartbeat",
            json={"health": dict(health)},
            retry=True,
            parser=parse.keys(server_time=str),
        )

    def verify_staff(self, badge: str, pin: str) -> StaffIdentity:
        """``POST /v1/staff/verify``: the staff member of a badge, if the PIN is right.

        Refusals: ``Rejected`` 403 ``bad_badge`` / ``bad_pin``, and ``RetryLater`` 423
        ``staff_locked`` with the seconds left.
        """
        # Never retried: every attempt that reaches the server counts as a typed PIN, so a
        # retry after a read timeout could count one wrong PIN twice and lock the staff member
        # out early. The caller answers Unreachable with its offline check instead.
        return self._call(
            "POST",
            "/v1/staff/verify",
            json={"badge": badge, "pin": pin},
            retry=False,
            parser=parse.staff,
        )

    # ---- the one request loop ---------------------------------------------------------------
    def _txn(
        self,
        method: str,
        path: str,
        txn_id: str,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Redemption:
        r = self._call(
            method, path, json=json, retry=True, parser=parse.redemption, headers=headers
        )
        if r.txn_id != txn_id:
            raise BadResponse(
                f"store server at {self.base_url} answered {method} {path} about another "
                f"transaction ({r.txn_id}): check the store server version"
            )
        return r

    def _call(
        self,
        method: str,
        path: str,
        *,
        parser: Callable[[object], T] | None = None,
        read: Callable[[requests.Response], T] | None = None,
        accept: str | None = None,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        retry: bool,
        auth: bool = True,
        within_s: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> T:
        """One call, retried (``retry``) with backoff; ``within_s`` bounds the whole call:
        each attempt's timeouts are cut to what is left and no retry starts after it.

        A 2xx body is JSON given to ``parser``, or, with ``read``, streamed: ``read`` takes
        the response and reads what it wants of the body (a picture, bounded)."""
        what = f"{method} {path}"
        deadline = None if within_s is None else time.monotonic() + within_s
        if auth and not self.token:
            raise Rejected(
                401,
                "not_enrolled",
                f"{what}: this kiosk has no store server token: enroll it (kiosk-provision)",
            )
        sent_headers: dict[str, str | None] = {} if auth else {"Authorization": None}
        sent_headers.update(headers or {})
        if accept is not None:
            sent_headers["Accept"] = accept
        attempts = max(1, self.retry.attempts) if retry else 1
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            timeout = self.timeout
            sent: Any = timeout
            if deadline is not None:
                left = round(max(0.05, deadline - time.monotonic()), 2)
                timeout = (min(timeout[0], left), min(timeout[1], left))
                # total: the connect and the wait for the answer together within what is left
                # (the tuple alone allows a slow connect plus a full read timeout after it; a
                # server dripping its answer byte by byte is bounded by the session's give-up)
                sent = urllib3.Timeout(connect=timeout[0], read=timeout[1], total=left)
            try:
                resp = self.request(
                    method,
                    self.base_url + path,
                    json=json,
                    params=params,
                    headers=sent_headers or None,
                    timeout=sent,
                    verify=self._verify,
                    allow_redirects=False,
                    stream=read is not None,
                )
            except requests.RequestException as exc:
                error, transient = parse.transport_error(
                    exc,
                    what,
                    retry,
                    base_url=self.base_url,
                    pin_sha256=self.pin_sha256,
                    timeout=timeout,
                )
                if transient and not last and self._backoff(attempt, deadline):
                    continue
                raise error from None
            except (
                urllib3.exceptions.HTTPError,
                http.client.HTTPException,
                OSError,
                UnicodeError,
            ) as exc:
                # Not wrapped by requests (e.g. a malformed URL or header): same treatment.
                raise Unreachable(
                    f"request {what} to {self.base_url} failed ({parse.short(exc)}): "
                    "check server.url"
                ) from None
            if resp.status_code >= 500:
                resp.close()  # a streamed body left unread would hold its connection
                if not last and self._backoff(attempt, deadline):
                    continue
                tried = f" (after {attempt} attempts)" if attempt > 1 else ""
                raise Unreachable(
                    f"store server at {self.base_url} failed on {what} with HTTP "
                    f"{resp.status_code}{tried}{parse.server_says(resp)}: "
                    "check the store server's log"
                )
            if 400 <= resp.status_code < 500:
                raise parse.rejection(resp, what, self.base_url)
            if not 200 <= resp.status_code < 300:
                resp.close()
                where = resp.headers.get("Location", "")
                raise BadResponse(
                    f"store server at {self.base_url} answered {what} with HTTP "
                    f"{resp.status_code}{' to ' + where if where else ''}: check server.url "
                    "(scheme, host and port of the store server itself)"
                )
            if read is not None:
                try:
                    return read(resp)
                except requests.RequestException as exc:  # the body broke off or timed out
                    raise Unreachable(
                        f"store server at {self.base_url} broke off its answer to {what} "
                        f"({parse.short(exc)}): check the network; retrying later"
                    ) from None
                finally:
                    resp.close()
            assert parser is not None
            try:
                return parser(resp.json())
            except (ValueError, parse.ShapeError, RecursionError) as exc:
                raise BadResponse(
                    f"store server at {self.base_url} answered garbage to {what} "
                    f"({parse.short(exc)}): check that server.url points at the store server"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns/raises

    def _backoff(self, attempt: int, deadline: float | None = None) -> bool:
        """Wait before the next attempt; False (no wait) when it would start past
        ``deadline``."""
        delay = self.retry.delay(attempt, self._rng)
        if deadline is not None and time.monotonic() + delay >= deadline:
            return False
        self._sleep(delay)
        return True


def _enrolled_keys(data: Mapping[str, Any]) -> tuple[bytes, ...]:
    """The raw keys of an enrollment answer, current first: ``public_keys`` when the server
    sends it (it must start with ``public_key``), else ``public_key`` alone (older servers);
    () when any is not a 32-byte key."""
    listed = data.get("public_keys", [data["public_key"]])
    if (
        not isinstance(listed, list)
        or not 1 <= len(listed) <= MAX_KEYS
        or listed[0] != data["public_key"]
    ):
        return ()
    try:
        keys = tuple(base64.b64decode(k, validate=True) for k in listed)
    except (binascii.Error, ValueError, TypeError):
        return ()
    return keys if all(len(k) == 32 for k in keys) else ()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _session(member_session: str | None) -> dict[str, str] | None:
    """The member session header of a hold or spin (docs/kiosk-sync.md)."""
    return None if member_session is None else {MEMBER_SESSION_HEADER: member_session}


def _seg(value: str) -> str:
    """One URL path segment, escaped (an id must never add a path or a query)."""
    return urllib.parse.quote(value, safe="")
