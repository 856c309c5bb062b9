"""Who is calling: a route declares the roles it admits with ``Depends(Allowed(...))`` (a token
is needed) or ``Depends(Public())`` (none is).

The declaration is data on the route (``Allowed.roles``), so a test walks every route of the app
and checks each role against it (tests/storeserver/test_route_roles.py): a route without one
fails that test. A kiosk token acts as ``kiosk``; an account token (storeserver/accounts.py) as
its account's role.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .. import accounts, kiosks
from ..errors import ApiError, Unauthorized
from ..ledger import current_actor
from ..store import Store

API_VERSION = "1.0.0"
bearer = HTTPBearer(
    auto_error=False,
    description="a kiosk token from /v1/kiosks/enroll, or an account token "
    "('storeserver token --account ID'): cashier, manager, admin, technician or member-app",
)


class Role(enum.StrEnum):
    PUBLIC = "public"  # no token: health, enrollment (its code is the credential), seeds
    KIOSK = "kiosk"
    CASHIER = accounts.AccountRole.CASHIER.value
    MANAGER = accounts.AccountRole.MANAGER.value
    ADMIN = accounts.AccountRole.ADMIN.value
    TECHNICIAN = accounts.AccountRole.TECHNICIAN.value
    MEMBER_APP = accounts.AccountRole.MEMBER_APP.value


# every role that may act on a store's members at the till or in the back office
STORE_STAFF = (Role.CASHIER, Role.MANAGER, Role.ADMIN)
BACK_OFFICE = (Role.MANAGER, Role.ADMIN)


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of a request."""

    role: Role
    name: str  # the kiosk id or the account id; empty for a public call
    member_id: str | None = None  # a member-app account's member

    @property
    def actor(self) -> str:
        """How the ledger names this caller (points_changes.actor)."""
        return f"{'kiosk' if self.role is Role.KIOSK else 'account'}:{self.name}"


class Forbidden(ApiError):
    status = 403


def store_of(request: Request) -> Store:
    return request.app.state.store


def _describe(roles: frozenset[Role]) -> str:
    return " or ".join(sorted(r.value for r in roles))


class Allowed:
    """Dependency: the caller, refused unless their token's role is one of ``roles``.

    401 for no token or an unknown, expired or revoked one; 403 ``forbidden_role`` for a good
    token of another role. It is async on purpose: the ledger's actor it sets is then copied
    into the thread that runs the (sync) route.
    """

    def __init__(self, *roles: Role) -> None:
        if not roles or Role.PUBLIC in roles:
            raise ValueError("list the roles a token must have; a public route uses Public()")
        self.roles = frozenset(roles)

    async def __call__(
        self,
        request: Request,
        creds: HTTPAuthorizationCredentials | None = Depends(bearer),
    ) -> Caller:
        if creds is None or not creds.credentials:
            raise Unauthorized("missing_token", "send Authorization: Bearer <token>")
        caller = identify(store_of(request), creds.credentials)
        if caller.role not in self.roles:
            raise Forbidden(
                "forbidden_role",
                f"this call needs a {_describe(self.roles)} token; yours is a {caller.role} token",
            )
        current_actor.set(caller.actor)
        return caller


class Public:
    """Dependency of a route anyone may call: it declares ``Role.PUBLIC`` and asks no token."""

    roles = frozenset({Role.PUBLIC})

    def __call__(self) -> Caller:
        return Caller(Role.PUBLIC, "")


def identify(store: Store, token: str) -> Caller:
    """The kiosk or account a bearer token belongs to (401 when none)."""
    conn = store.db.connection()
    account = accounts.account_for_token(conn, store.clock, token)
    if account is not None:
        return Caller(Role(account.role.value), account.id, account.member_id)
    try:
        return Caller(Role.KIOSK, kiosks.kiosk_for_token(conn, token))
    except Unauthorized:
        raise Unauthorized(
            "bad_token",
            "unknown token: a kiosk re-enrolls with a new code; a person or till asks an admin "
            "for a token ('storeserver token --account ID')",
        ) from None


def declared_roles(dependency: object) -> frozenset[Role] | None:
    """The roles a route's dependency declares, or None when it is no declaration."""
    if isinstance(dependency, Allowed | Public):
        return dependency.roles
    return None
