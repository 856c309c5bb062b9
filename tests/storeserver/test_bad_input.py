"""Bad input over real HTTP: every refusal has its status, a stable error code and a message, and
leaves the database exactly as it was (db_snapshot before == after)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storeserver import codes, members

from .conftest import Client, db_snapshot, new_txn, refused

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "api" / "openapi.json"
TXN = "3f0c2a1e-5b6d-4c7e-8f90-a1b2c3d4e5f6"


def redemption(**changes) -> dict:
    body = {
        "txn_id": TXN,
        "member_id": "M0002",
        "sku": "GIFT-MUG",
        "compartment": 1,
        "points": 800,
        "cash_cents": 0,
    }
    return {**body, **changes}


def spin(**changes) -> dict:
    return {"txn_id": TXN, "member_id": "M0002", "wheel_id": "LUCKY", **changes}


# every operation that takes a kiosk token (checked against the OpenAPI document below)
KIOSK_CALLS = [
    ("GET", "/v1/catalog", None),
    ("GET", "/v1/pictures/mug.png", None),
    ("POST", "/v1/kiosks/heartbeat", {"health": {"paper": "ok"}}),
    (
        "POST",
        "/v1/kiosks/events",
        {
            "events": [
                {
                    "event_id": "ev-1",
                    "kind": "fault",
                    "at": "2026-11-23T10:00:00+08:00",
                    "payload": {},
                }
            ]
        },
    ),
    ("POST", "/v1/members/resolve", {"code": "LK1.M.M0001.1.61.0123456789abcdef.AAAA"}),
    ("GET", "/v1/payments/pay_0123456789abcdef", None),
    ("POST", "/v1/redemptions", redemption()),
    ("GET", f"/v1/redemptions/{TXN}", None),
    ("POST", f"/v1/redemptions/{TXN}/capture", None),
    ("POST", f"/v1/redemptions/{TXN}/void", {"reason": "door jammed"}),
    ("POST", "/v1/wheel/spins", spin()),
    ("GET", "/v1/wheels/LUCKY", None),
    (
        "POST",
        "/v1/staff/verify",
        {"badge": "LK1.S.S0001.1.61.0123456789abcdef.AAAA", "pin": "246810"},
    ),
]
STAFF_CALLS = [
    ("GET", "/v1/kiosks", None),
    ("GET", "/v1/kiosks/kiosk-01/alerts", None),
    ("POST", "/v1/kiosks/kiosk-01/alerts/1/handled", None),
    ("POST", "/v1/kiosks/kiosk-01/technician-codes", {"minutes": 5}),
    ("POST", "/v1/coupons/CPN-ABCDEFGHJK/redeem", {"ref": "till-1"}),
    ("POST", "/v1/members", {"name": "赵敏", "phone": "13500001111"}),
    ("GET", "/v1/members/M0001", None),
    ("POST", "/v1/members/M0001/adjustments", {"points": 10, "reason": "goodwill", "ref": "a-1"}),
    ("POST", "/v1/members/M0001/purchases", {"amount_cents": 1000, "ref": "r-1"}),
    ("POST", "/v1/members/M0001/topups", {"amount_cents": 1000, "ref": "t-1"}),
]
JSON_BODY_CALLS = [
    (c, m, p)
    for c, calls in (("kiosk", KIOSK_CALLS), ("staff", STAFF_CALLS))
    for m, p, b in calls
    if b is not None
] + [("anon", "POST", "/v1/kiosks/enroll")]


def send(
    client: Client,
    method: str,
    path: str,
    body=None,
    *,
    raw: str | None = None,
    authorization: str | None = None,
) -> requests.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    if raw is not None:
        headers["Content-Type"] = "application/json"
        return client.session.request(
            method, client.base_url + path, data=raw.encode(), headers=headers, timeout=10
        )
    return client.session.request(
        method, client.base_url + path, json=body, headers=headers, timeout=10
    )


@pytest.fixture
def clients(kiosk, staff, anon) -> dict[str, Client]:
    return {"kiosk": kiosk, "staff": staff, "anon": anon}


# ---- authentication ---------------------------------------------------------------------------
def _operations(doc: dict, staff: bool) -> set[tuple[str, str]]:
    """Kiosk operations, or those of the store's staff accounts (tag staff); the member app's
    one operation (tag members) is in the route x role matrix (test_route_roles.py)."""
    return {
        (method.upper(), path)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if op.get("security")
        and "members" not in op.get("tags", [])
        and ("staff" in op.get("tags", [])) == staff
    }


def _template(path: str, doc: dict) -> str:
    for template in doc["paths"]:
        parts, want = template.split("/"), path.split("/")
        if len(parts) == len(want) and all(
            t == w or (t.startswith("{") and t.endswith("}"))
            for t, w in zip(parts, want, strict=True)
        ):
            return template
    raise AssertionError(f"{path} is not in the OpenAPI document")


def test_tables_cover_every_authenticated_operation():
    doc = json.loads(OPENAPI.read_text(encoding="utf-8"))
    assert {(m, _template(p, doc)) for m, p, _ in KIOSK_CALLS} == _operations(doc, staff=False)
    assert {(m, _template(p, doc)) for m, p, _ in STAFF_CALLS} == _operations(doc, staff=True)


BAD_KIOSK_CREDENTIALS = [
    (None, "missing_token"),
    ("Basic a2lvc2stMDE6c2VjcmV0", "missing_token"),
    ("Bearer ", "missing_token"),
    ("Bearer not-a-kiosk-token", "bad_token"),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), KIOSK_CALLS, ids=[f"{m} {p}" for m, p, _ in KIOSK_CALLS]
)
def test_kiosk_endpoints_need_a_kiosk_token(store, clients, method, path, body):
    for credential, error in BAD_KIOSK_CREDENTIALS:
        refused(
            store,
            401,
            error,
            lambda c=credential: send(clients["anon"], method, path, body, authorization=c),
            case=f"Authorization: {credential}",
        )
    # a good token of another role is 403: a manager's token is not a kiosk's
    staff_token = clients["staff"].session.headers["Authorization"]
    refused(
        store,
        403,
        "forbidden_role",
        lambda: send(clients["anon"], method, path, body, authorization=staff_token),
    )


@pytest.mark.parametrize(
    ("method", "path", "body"), STAFF_CALLS, ids=[f"{m} {p}" for m, p, _ in STAFF_CALLS]
)
def test_staff_endpoints_need_a_staff_token(store, clients, method, path, body):
    kiosk_token = clients["kiosk"].session.headers["Authorization"]
    for credential, status, error in [
        (None, 401, "missing_token"),
        ("Bearer not-a-staff-token", 401, "bad_token"),
        (kiosk_token, 403, "forbidden_role"),
    ]:
        refused(
            store,
            status,
            error,
            lambda c=credential: send(clients["anon"], method, path, body, authorization=c),
            case=f"Authorization: {credential}",
        )


# ---- malformed JSON, wrong types, negative amounts --------------------------------------------
@pytest.mark.parametrize(
    ("who", "method", "path"), JSON_BODY_CALLS, ids=[f"{m} {p}" for _, m, p in JSON_BODY_CALLS]
)
def test_malformed_json_is_400(store, clients, who, method, path):
    for raw in [
        '{"txn_id": "abc",',
        "{'single': 'quotes'}",
        "not json at all",
        '{"a": 1} trailing',
    ]:
        refused(
            store,
            400,
            "malformed_json",
            lambda r=raw: send(clients[who], method, path, raw=r),
            case=raw,
        )


WRONG_TYPES = [
    ("kiosk", "POST", "/v1/redemptions", redemption(points="lots")),
    ("kiosk", "POST", "/v1/redemptions", redemption(points=800.5)),
    ("kiosk", "POST", "/v1/redemptions", redemption(txn_id=12345)),
    ("kiosk", "POST", "/v1/redemptions", redemption(txn_id="not-a-uuid")),
    ("kiosk", "POST", "/v1/redemptions", redemption(compartment="one")),
    ("kiosk", "POST", "/v1/redemptions", redemption(member_id=None)),
    (
        "kiosk",
        "POST",
        "/v1/redemptions",
        redemption(colour="red"),
    ),  # unknown field: a typo surfaces
    ("kiosk", "POST", "/v1/redemptions", [redemption()]),
    ("kiosk", "POST", "/v1/redemptions", {k: v for k, v in redemption().items() if k != "sku"}),
    ("kiosk", "POST", "/v1/wheel/spins", spin(wheel_id=["LUCKY"])),
    ("kiosk", "POST", "/v1/kiosks/heartbeat", {"health": ["paper ok"]}),
    ("kiosk", "POST", "/v1/kiosks/events", {"events": {"event_id": "ev-1"}}),
    ("kiosk", "POST", "/v1/kiosks/events", {"events": []}),
    (
        "kiosk",
        "POST",
        "/v1/kiosks/events",
        {"events": [{"event_id": "ev-1", "kind": "teleport", "at": "2026-11-23T10:00:00+08:00"}]},
    ),
    ("kiosk", "POST", "/v1/members/resolve", {"code": 42}),
    ("kiosk", "POST", f"/v1/redemptions/{TXN}/void", {"reason": ["jammed"]}),
    ("staff", "POST", "/v1/members/M0001/purchases", {"amount_cents": "ten yuan", "ref": "r-1"}),
    ("staff", "POST", "/v1/members/M0001/topups", {"amount_cents": 10.5, "ref": "t-1"}),
    ("staff", "POST", "/v1/members", {"name": "赵敏", "phone": 13500001111}),
    ("staff", "POST", "/v1/members", {"name": "赵敏", "phone": "call me"}),
    ("anon", "POST", "/v1/kiosks/enroll", {"enrollment_code": 1234, "kiosk_id": "kiosk-09"}),
    ("anon", "GET", "/v1/wheels/LUCKY/seeds/yesterday", None),
]


@pytest.mark.parametrize(
    ("who", "method", "path", "body"),
    WRONG_TYPES,
    ids=[f"{m} {p} #{i}" for i, (_, m, p, _) in enumerate(WRONG_TYPES)],
)
def test_wrong_types_are_422(store, clients, who, method, path, body):
    refused(store, 422, "invalid_request", lambda: send(clients[who], method, path, body))


NEGATIVE = [
    ("kiosk", "/v1/redemptions", redemption(points=-800)),
    ("kiosk", "/v1/redemptions", redemption(cash_cents=-1)),
    ("kiosk", "/v1/redemptions", redemption(compartment=-1)),
    ("staff", "/v1/members/M0001/purchases", {"amount_cents": -10000, "ref": "r-1"}),
    ("staff", "/v1/members/M0001/purchases", {"amount_cents": 0, "ref": "r-1"}),
    ("staff", "/v1/members/M0001/topups", {"amount_cents": -1, "ref": "t-1"}),
]


@pytest.mark.parametrize(
    ("who", "path", "body"), NEGATIVE, ids=[f"{p} #{i}" for i, (_, p, _) in enumerate(NEGATIVE)]
)
def test_negative_amounts_and_points_are_422(store, clients, who, path, body):
    body = refused(store, 422, "invalid_request", lambda: send(clients[who], "POST", path, body))
    assert any(
        field in body["message"]
        for field in ("points", "cash_cents", "compartment", "amount_cents")
    )


# ---- unknown member ---------------------------------------------------------------------------
UNKNOWN_MEMBER = [
    ("staff", "POST", "/v1/members/M9999/purchases", {"amount_cents": 1000, "ref": "r-1"}),
    ("staff", "POST", "/v1/members/M9999/topups", {"amount_cents": 1000, "ref": "t-1"}),
    ("staff", "GET", "/v1/members/M9999", None),
    (
        "staff",
        "POST",
        "/v1/members",
        {"name": "赵敏", "phone": "13500001111", "referred_by": "M9999"},
    ),
]


@pytest.mark.parametrize(
    ("who", "method", "path", "body"),
    UNKNOWN_MEMBER,
    ids=[f"{m} {p}" for _, m, p, _ in UNKNOWN_MEMBER],
)
def test_unknown_member_is_404(store, clients, who, method, path, body):
    body = refused(store, 404, "unknown_member", lambda: send(clients[who], method, path, body))
    assert "M9999" in body["message"]


# a kiosk without the member's session learns nothing, whether the member exists or not
NO_SESSION = [
    ("POST", "/v1/redemptions", redemption(member_id="M9999")),
    ("POST", "/v1/redemptions", redemption()),
    ("POST", "/v1/wheel/spins", spin(member_id="M9999")),
    ("POST", "/v1/wheel/spins", spin()),
    ("GET", "/v1/wheels/LUCKY?member_id=M9999", None),
    ("GET", "/v1/wheels/LUCKY?member_id=M0002", None),
]


@pytest.mark.parametrize(("method", "path", "body"), NO_SESSION)
def test_holds_and_spins_without_a_member_session_are_403_for_any_member(
    store, kiosk, method, path, body
):
    first = refused(store, 403, "member_session_required", lambda: send(kiosk, method, path, body))
    session = {"X-Member-Session": "ms_" + "x" * 43}
    resp = kiosk.session.request(
        method, kiosk.base_url + path, json=body, headers=session, timeout=10
    )
    assert resp.status_code == 403 and resp.json()["error"] == "member_session_invalid"
    assert "M9999" not in first["message"] + resp.json()["message"]


# ---- member codes: expired, forged, malformed, replayed ----------------------------------------
def member_code(store, member: str = "M0001") -> str:
    """A fresh code, as the member's app gets it (the member-app route is in test_route_roles)."""
    with store.db.transaction() as conn:
        return members.issue_code(store.ledger, conn, store.signing_key, member)["code"]


def test_expired_member_code_is_400(store, kiosk, staff, clock):
    code = member_code(store)
    clock.advance(seconds=61)
    body = refused(
        store, 400, "code_expired", lambda: kiosk.post("/v1/members/resolve", {"code": code})
    )
    assert "refresh" in body["message"]


def _flip_signature(code: str, store) -> str:
    head, sig = code.rsplit(".", 1)
    i = len(sig) // 2  # a middle character: the last one carries padding bits that may not count
    return f"{head}.{sig[:i]}{'B' if sig[i] == 'A' else 'A'}{sig[i + 1 :]}"


def _other_key(code: str, store) -> str:
    return codes.issue(
        Ed25519PrivateKey.generate(),
        codes.CodeKind.MEMBER,
        "M0001",
        int(store.clock.now().timestamp()),
    )


def _other_subject(code: str, store) -> str:
    return code.replace(".M0001.", ".M0002.", 1)


def _staff_badge(code: str, store) -> str:
    return codes.issue(
        store.signing_key, codes.CodeKind.STAFF, "S001", int(store.clock.now().timestamp())
    )


@pytest.mark.parametrize(
    ("tamper", "status", "error"),
    [
        (_flip_signature, 401, "code_forged"),
        (_other_key, 401, "code_forged"),
        (_other_subject, 401, "code_forged"),
        (lambda code, store: code.replace("LK1.", "LK2.", 1), 400, "code_malformed"),
        (lambda code, store: "https://example.com/not-a-member-code", 400, "code_malformed"),
        (_staff_badge, 400, "not_a_member_code"),
    ],
    ids=["flipped-signature", "other-key", "other-subject", "wrong-prefix", "url", "staff-badge"],
)
def test_bad_member_codes_are_refused(store, kiosk, staff, tamper, status, error):
    code = tamper(member_code(store), store)
    refused(store, status, error, lambda: kiosk.post("/v1/members/resolve", {"code": code}))


def test_replayed_member_code_is_409_at_another_kiosk(store, kiosk, other_kiosk, staff):
    code = member_code(store)
    first = kiosk.post("/v1/members/resolve", {"code": code})
    assert first.status_code == 200 and first.json()["member_id"] == "M0001", first.text
    # the same kiosk retrying (its network dropped the answer) is allowed
    again = kiosk.post("/v1/members/resolve", {"code": code})
    assert again.status_code == 200 and again.json()["member_id"] == "M0001", again.text
    body = refused(
        store, 409, "code_replayed", lambda: other_kiosk.post("/v1/members/resolve", {"code": code})
    )
    assert "another kiosk" in body["message"]


# ---- idempotency keys -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "second"),
    [
        ("/v1/redemptions", redemption(sku="GIFT-TOTE", compartment=2, points=300)),
        ("/v1/redemptions", redemption(member_id="M0003")),
        ("/v1/wheel/spins", spin()),
    ],
    ids=["other-item", "other-member", "spin"],
)
def test_txn_id_reused_with_a_different_body_is_409(store, kiosk, path, second):
    txn = new_txn()
    first = kiosk.post(
        "/v1/redemptions", redemption(txn_id=txn), headers=kiosk.member_session("M0002")
    )
    assert first.status_code == 200, first.text
    second = {**second, "txn_id": txn}
    body = refused(store, 409, "txn_id_reused", lambda: kiosk.post(path, second))
    assert txn in body["message"]
    # the first request itself is still answered the same (idempotent)
    assert kiosk.post("/v1/redemptions", redemption(txn_id=txn)).json() == first.json()


# ---- free-form JSON the server stores: must be storable text, numbers in range ------------------
@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/v1/kiosks/heartbeat", '{"health": {"printer": "\\ud800"}}'),
        (
            "/v1/kiosks/events",
            '{"events": [{"event_id": "ev-1", "kind": "fault", "at": "x", "payload": {"detail": ["\\udfff"]}}]}',
        ),
        (
            "/v1/kiosks/events",
            '{"events": [{"event_id": "ev-1", "kind": "offline_redemption", "at": "x", "payload": '
            '{"txn_id": "\\ud83d", "member_id": "M0002", "sku": "GIFT-TOTE", "points": 300}}]}',
        ),
    ],
    ids=["heartbeat", "fault-event", "offline-txn-id"],
)
def test_unpaired_surrogates_in_free_form_json_are_422(store, kiosk, path, raw):
    # valid JSON escapes, but no UTF-8 text: these used to reach SQLite and fail with a 500
    body = refused(store, 422, "invalid_request", lambda: send(kiosk, "POST", path, raw=raw))
    assert "surrogate" in body["message"]


@pytest.mark.parametrize(
    "compartment", [2**70, 0, -5, True, "2"], ids=["huge", "zero", "negative", "bool", "text"]
)
def test_offline_redemption_with_a_bad_compartment_is_a_conflict(store, kiosk, compartment):
    # 2**70 used to overflow SQLite's INTEGER (a 500); the batch is answered, the event is a conflict
    event = {
        "event_id": "off-1",
        "kind": "offline_redemption",
        "at": "2026-11-23T10:00:00+08:00",
        "payload": {
            "txn_id": new_txn(),
            "member_id": "M0002",
            "sku": "GIFT-TOTE",
            "points": 300,
            "compartment": compartment,
        },
    }
    before = db_snapshot(store)
    resp = kiosk.post("/v1/kiosks/events", {"events": [event]})
    assert resp.status_code == 200, resp.text
    [result] = resp.json()["results"]
    assert result["status"] == "conflict" and result["reason"] == "invalid_payload", result
    assert "compartment" in result["message"]
    after = db_snapshot(store)
    # the event and a staff alert are recorded; no points, stock or redemption moved
    for table in (
        "lots",
        "points_changes",
        "redemptions",
        "hold_allocations",
        "compartments",
        "members",
    ):
        assert after[table] == before[table], table
