"""The route x role matrix: every route of the app declares the roles that may call it, and every
role (no token, an unknown token, a kiosk, each kind of account) is admitted or refused exactly
as declared, a refusal changing nothing. Generated from the app's routes: a new route without a
declaration, or one missing from EXPECTED, fails here."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from storeserver.api import create_app
from storeserver.api.auth import Role, declared_roles

from .conftest import Client, account, db_snapshot

TXN = "3f0c2a1e-5b6d-4c7e-8f90-a1b2c3d4e5f6"
PATH_VALUES = {
    "member_id": "M0001",
    "kiosk_id": "kiosk-01",
    "alert_id": 1,
    "txn_id": TXN,
    "payment_id": "pay_0123456789abcdef",
    "wheel_id": "LUCKY",
    "day": "2026-11-20",
    "code": "CPN-ABCDEFGHJK",
    "name": "mug.png",
}
ANYONE = frozenset({Role.PUBLIC})
KIOSK = frozenset({Role.KIOSK})
TILL = frozenset({Role.CASHIER, Role.MANAGER, Role.ADMIN})
# What each route admits: changing a route's roles means changing this table, on purpose.
EXPECTED: dict[tuple[str, str], frozenset[Role]] = {
    ("GET", "/v1/health"): ANYONE,
    ("GET", "/v1/ready"): ANYONE,
    ("POST", "/v1/kiosks/enroll"): ANYONE,
    ("POST", "/v1/kiosks/heartbeat"): KIOSK,
    ("POST", "/v1/kiosks/events"): KIOSK,
    ("GET", "/v1/kiosks"): frozenset({Role.MANAGER, Role.ADMIN, Role.TECHNICIAN}),
    ("GET", "/v1/kiosks/{kiosk_id}/alerts"): frozenset({Role.MANAGER, Role.ADMIN, Role.TECHNICIAN}),
    ("POST", "/v1/kiosks/{kiosk_id}/alerts/{alert_id}/handled"): frozenset(
        {Role.MANAGER, Role.ADMIN, Role.TECHNICIAN}
    ),
    ("POST", "/v1/kiosks/{kiosk_id}/technician-codes"): frozenset({Role.ADMIN, Role.TECHNICIAN}),
    ("GET", "/v1/catalog"): KIOSK,
    ("GET", "/v1/pictures/{name}"): KIOSK,
    ("POST", "/v1/coupons/{code}/redeem"): TILL,
    ("POST", "/v1/members"): TILL,
    ("GET", "/v1/members/{member_id}"): TILL,
    ("POST", "/v1/members/{member_id}/purchases"): TILL,
    ("POST", "/v1/members/{member_id}/topups"): TILL,
    ("POST", "/v1/members/{member_id}/adjustments"): frozenset({Role.MANAGER, Role.ADMIN}),
    ("POST", "/v1/members/{member_id}/code"): frozenset({Role.MEMBER_APP}),
    ("POST", "/v1/members/resolve"): KIOSK,
    ("POST", "/v1/staff/verify"): KIOSK,
    ("POST", "/v1/redemptions"): KIOSK,
    ("GET", "/v1/redemptions/{txn_id}"): KIOSK,
    ("POST", "/v1/redemptions/{txn_id}/capture"): KIOSK,
    ("POST", "/v1/redemptions/{txn_id}/void"): KIOSK,
    ("GET", "/v1/payments/{payment_id}"): KIOSK,
    ("POST", "/v1/payments/{payment_id}/simulate-paid"): ANYONE,  # simulated provider only
    ("GET", "/pay/{payment_id}"): ANYONE,  # simulated provider only
    ("GET", "/v1/wheels/{wheel_id}"): KIOSK,
    ("GET", "/v1/wheels/{wheel_id}/seeds/{day}"): ANYONE,
    ("POST", "/v1/wheel/spins"): KIOSK,
}
AUTH_REFUSALS = {"missing_token", "bad_token", "forbidden_role", "token_expired", "token_revoked"}


def api_routes(routes) -> list[APIRoute]:
    """The app's API routes, also inside included routers (FastAPI wraps each one; the app
    includes them without a prefix, so their paths are the served paths)."""
    found = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found += api_routes(route.original_router.routes)
    return found  # FastAPI's own /openapi.json and /docs are plain routes: not listed


def operations(store) -> list[tuple[str, str, frozenset[Role] | None]]:
    """(method, path, declared roles) of every API route of the app."""
    found = []
    for route in api_routes(create_app(store).routes):
        declarations = [
            roles
            for dep in route.dependant.dependencies
            if (roles := declared_roles(dep.call)) is not None
        ]
        assert len(declarations) <= 1, f"{route.path} declares its roles twice"
        for method in sorted(route.methods):
            found.append((method, route.path, declarations[0] if declarations else None))
    return found


def test_every_route_declares_its_roles_as_expected(store):
    ops = operations(store)
    undeclared = [f"{m} {p}" for m, p, roles in ops if roles is None]
    assert not undeclared, (
        f"routes without Depends(Allowed(...)) or Depends(Public()): {undeclared}"
    )
    declared = {(m, p): roles for m, p, roles in ops}
    assert declared == EXPECTED


@pytest.fixture
def callers(server, kiosk) -> dict[str, Client]:
    """One client per role, plus none and an unknown token."""
    return {
        "none": Client(server.url, None),
        "unknown token": Client(server.url, "tok_not-a-real-token"),
        Role.KIOSK.value: kiosk,
        **{
            role: account(server, role, "M0001" if role == "member-app" else None)
            for role in ("cashier", "manager", "admin", "technician", "member-app")
        },
    }


def _send(client: Client, method: str, path: str):
    url = path.format(**PATH_VALUES)
    if method == "GET":
        return client.get(url)
    return client.post(url, {})  # an empty JSON body: the role check comes before validation


def test_the_route_role_matrix(store, callers):
    checked = 0
    for method, path, roles in operations(store):
        for who, client in callers.items():
            admitted = roles is not None and (Role.PUBLIC in roles or who in roles)
            before = db_snapshot(store)
            resp = _send(client, method, path)
            case = f"{method} {path} as {who}: {resp.status_code} {resp.text[:200]}"
            error = resp.json().get("error") if resp.headers.get("content-type", "").startswith(
                "application/json"
            ) and isinstance(resp.json(), dict) else None  # fmt: skip
            if admitted:
                assert error not in AUTH_REFUSALS and resp.status_code != 401, case
                continue
            expected = {
                "none": (401, "missing_token"),
                "unknown token": (401, "bad_token"),
            }.get(who, (403, "forbidden_role"))
            assert (resp.status_code, error) == expected, case
            assert db_snapshot(store) == before, f"{case}: a refused call changed the database"
            checked += 1
    assert checked > 100  # the matrix really ran: most pairs are refusals
