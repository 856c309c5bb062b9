"""The kiosk's HTTP client for the store server (docs/api/openapi.json, docs/kiosk-sync.md).

Every failure leaves as a :class:`~kiosk.errors.StoreServerError` whose message a technician
can act on; no requests, urllib3 or JSON exception escapes. Only idempotent calls are retried.
This module holds the public calls; each goes through kiosk/sync/calls.py (attempts, what a
response means, retries) over the session of kiosk/sync/transport.py. What the answers mean
is kiosk/sync/parse.py (shapes) and kiosk/sync/refusals.py (error bodies, transport failures);
what enrollment leaves on disk is kiosk/sync/enrollment.py. ``BadResponse`` and ``RetryLater``
are importable from here as before.
"""

from __future__ import annotations

import logging
import os
import random
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import requests

from kiosk.config import ServerSection
from kiosk.domain.wheel import Wheel
from kiosk.errors import RetryLater
from kiosk.ports import Enrollment, EventResult, OutboxEvent, Redemption, StaffIdentity
from kiosk.storage.pictures import MAX_PICTURE_BYTES
from kiosk.sync import parse
from kiosk.sync.calls import Call, Endpoint, perform
from kiosk.sync.enrollment import enrolled_keys, read_token, store_enrollment
from kiosk.sync.parse import BadResponse
from kiosk.sync.pictures import PICTURE_TYPES, read_picture_body
from kiosk.sync.transport import RetryPolicy, new_session

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


class StoreServerClient:
    """The store server's kiosk API over one keep-alive ``requests.Session`` (``session``).

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
        self.base_url = base_url.rstrip("/")
        self.token_file = Path(token_file) if token_file is not None else None
        self.public_key_file = Path(public_key_file) if public_key_file is not None else None
        self._verify: str | bool = str(ca_bundle) if ca_bundle else True
        self.pin_sha256 = pin_sha256.lower().replace(":", "") if pin_sha256 else None
        self.pins = tuple(pins)
        self.timeout = (connect_timeout_s, read_timeout_s)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.session = new_session(self._verify, self.pins, self.pin_sha256)
        if token is None and self.token_file is not None:
            token = read_token(self.token_file)
        self.token = token

    def close(self) -> None:
        """Close the session's kept-alive connections."""
        self.session.close()

    def __enter__(self) -> StoreServerClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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
            self.session.headers["Authorization"] = f"Bearer {self._token}"
        else:
            self.session.headers.pop("Authorization", None)

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
        keys = enrolled_keys(data)
        if not keys or not data["token"].isascii() or not data["token"].strip():
            raise BadResponse(
                f"store server at {self.base_url} answered garbage to enrollment "
                "(bad token or public key): check server.url points at the store server"
            )
        token = data["token"].strip()
        store_enrollment(token, keys, self.token_file, self.public_key_file)
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

    # ---- the plumbing: kiosk/sync/calls.py ---------------------------------------------------
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
        """One call through kiosk/sync/calls.py: retried (``retry``) with backoff within
        ``within_s``; a 2xx body is JSON given to ``parser``, or, with ``read``, streamed to
        ``read``; ``auth``: with the kiosk token (``not_enrolled`` without one)."""
        call = Call(
            method, path, json=json, params=params, headers=headers, auth=auth, accept=accept,
            retry=retry, within_s=within_s, stream=read is not None,
        )  # fmt: skip
        endpoint = Endpoint(self.base_url, self.timeout, self._verify, self.pin_sha256,
                            self.retry, self._sleep, self._rng)  # fmt: skip
        return perform(self.session, endpoint, call, parser=parser, read=read)


def _session(member_session: str | None) -> dict[str, str] | None:
    """The member session header of a hold or spin (docs/kiosk-sync.md)."""
    return None if member_session is None else {MEMBER_SESSION_HEADER: member_session}


def _seg(value: str) -> str:
    """One URL path segment, escaped (an id must never add a path or a query)."""
    return urllib.parse.quote(value, safe="")
