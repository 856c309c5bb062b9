"""Who is calling: a route declares the roles it admits with ``Depends(Allowed(...))``.

The declaration is data on the route (``Allowed.roles``), so a test can walk every route of the
app and check each role against it (tests/storeserver/test_route_roles.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .. import kiosks
from ..errors import ApiError, Unauthorized
from ..store import Store

API_VERSION = "1.0.0"
bearer = HTTPBearer(
    auto_error=False, description="kiosk token from /v1/kiosks/enroll, or a staff token"
)


class Role(enum.StrEnum):
    PUBLIC = "public"  # no token: health, enrollment (its code is the credential), seeds
    KIOSK = "kiosk"
    STAFF = "staff"  # a staff token from `storeserver staff-token`


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of a request."""

    role: Role
    name: str  # the kiosk id, or the token's name


class Forbidden(ApiError):
    status = 403


def store_of(request: Request) -> Store:
    return request.app.state.store


class Allowed:
    """Dependency: the caller, refused with 401 unless their token is one of ``roles``."""

    def __init__(self, *roles: Role) -> None:
        if not roles or Role.PUBLIC in roles:
            raise ValueError("list the roles a token must have; a public route uses Public()")
        self.roles = frozenset(roles)

    def __call__(
        self,
        request: Request,
        creds: HTTPAuthorizationCredentials | None = Depends(bearer),
    ) -> Caller:
        store = store_of(request)
        if creds is None or not creds.credentials:
            raise Unauthorized("missing_token", "send Authorization: Bearer <token>")
        conn = store.db.connection()
        if self.roles == {Role.KIOSK}:
            return Caller(Role.KIOSK, kiosks.kiosk_for_token(conn, creds.credentials))
        if self.roles == {Role.STAFF}:
            return Caller(Role.STAFF, kiosks.staff_for_token(conn, creds.credentials))
        raise ValueError(f"no way to authenticate {sorted(self.roles)} yet")


class Public:
    """Dependency of a route anyone may call: it declares ``Role.PUBLIC`` and asks no token."""

    roles = frozenset({Role.PUBLIC})

    def __call__(self) -> Caller:
        return Caller(Role.PUBLIC, "")
