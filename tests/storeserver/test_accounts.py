"""Accounts and their tokens: one role each, an expiry, revocation, and every points change
recorded with the account (or kiosk) that made it. The attacks of issue 11 with a staff token
that did everything are refused here."""

from __future__ import annotations

import pytest

from storeserver import accounts
from storeserver.cli import main
from storeserver.errors import ApiError

from .conftest import Client, account, db_snapshot, new_txn, refused


def actors(store, member_id: str) -> list[tuple[str, str]]:
    rows = store.db.connection().execute(
        "SELECT kind, actor FROM points_changes WHERE member_id = ? ORDER BY id", (member_id,)
    )
    return [(r["kind"], r["actor"]) for r in rows]


def test_a_tills_token_cannot_mint_a_member_code(store, server):
    """Found: a till's token minted a member code that a kiosk accepted (impersonation)."""
    for role in ("cashier", "manager", "admin", "technician"):
        till = account(server, role)
        refused(store, 403, "forbidden_role", lambda t=till: t.post("/v1/members/M0004/code"))


def test_a_member_app_mints_codes_for_its_own_member_only(store, server, kiosk):
    app = account(server, "member-app", "M0002")
    refused(store, 403, "not_your_member", lambda: app.post("/v1/members/M0004/code"))
    code = app.post("/v1/members/M0002/code").json()["code"]
    assert kiosk.post("/v1/members/resolve", {"code": code}).json()["member_id"] == "M0002"


def test_a_token_expires(store, server, clock):
    with store.db.transaction() as conn:
        accounts.add_account(conn, clock, "till-9", "cashier")
        _, token = accounts.issue_token(conn, clock, "till-9", days=1)
    till = Client(server.url, token)
    assert till.get("/v1/members/M0001").status_code == 200
    clock.advance(days=1)
    body = refused(store, 401, "token_expired", lambda: till.get("/v1/members/M0001"))
    assert "new one" in body["message"]


def test_a_revoked_token_stops_at_once_and_others_go_on(store, server, clock):
    with store.db.transaction() as conn:
        accounts.add_account(conn, clock, "till-7", "cashier")
        first_id, first = accounts.issue_token(conn, clock, "till-7")
        _, second = accounts.issue_token(conn, clock, "till-7")
    one, two = Client(server.url, first), Client(server.url, second)
    with store.db.transaction() as conn:
        assert accounts.revoke(conn, clock, first_id, None) == 1
    refused(store, 401, "token_revoked", lambda: one.get("/v1/members/M0001"))
    assert two.get("/v1/members/M0001").status_code == 200
    with store.db.transaction() as conn:  # every token of the account
        assert accounts.revoke(conn, clock, None, "till-7") == 1
    refused(store, 401, "token_revoked", lambda: two.get("/v1/members/M0001"))


@pytest.mark.parametrize(
    ("account_id", "role", "member", "error"),
    [
        ("till 1", "cashier", None, "invalid_account_id"),
        ("till-1", "owner", None, "invalid_role"),
        ("app-1", "member-app", None, "invalid_member_binding"),
        ("till-1", "cashier", "M0001", "invalid_member_binding"),
        ("app-1", "member-app", "M9999", "unknown_member"),
    ],
)
def test_bad_accounts_are_refused(store, account_id, role, member, error):
    with pytest.raises(ApiError) as caught, store.db.transaction() as conn:
        accounts.add_account(conn, store.clock, account_id, role, member)
    assert caught.value.code == error and caught.value.message


def test_every_points_change_names_who_made_it(store, server, kiosk, clock):
    cashier = account(server, "cashier")
    cashier_id = (
        store.db.connection()
        .execute("SELECT id FROM accounts WHERE role = 'cashier'")
        .fetchone()["id"]
    )
    assert cashier.post("/v1/members/M0001/purchases", {"amount_cents": 5000, "ref": "r-1"}).ok
    hold = kiosk.post(
        "/v1/redemptions",
        {"txn_id": new_txn(), "member_id": "M0001", "sku": "GIFT-TOTE", "compartment": 2,
         "points": 300, "cash_cents": 0},
        headers=kiosk.member_session("M0001"),
    )  # fmt: skip
    assert hold.status_code == 200, hold.text
    clock.advance(days=400)  # every lot expires: the sweep is the system's doing
    assert account(server, "manager").get("/v1/members/M0001").json()["balance"] == 0
    made = actors(store, "M0001")
    assert ("purchase", f"account:{cashier_id}") in made
    assert ("redeem", "kiosk:kiosk-01") in made
    assert made[-1] == ("expire", "system"), made


def test_the_command_line_adds_lists_and_revokes(store, server, capsys):
    db = store.db.path
    assert main(["add-account", "--db", db, "--id", "till-3", "--role", "cashier"]) == 0
    token = capsys.readouterr().out.strip()
    till = Client(server.url, token)
    assert till.get("/v1/members/M0001").status_code == 200
    assert main(["tokens", "--db", db]) == 0
    listed = [line.split("\t") for line in capsys.readouterr().out.splitlines()[1:]]
    (row,) = [r for r in listed if r[1] == "till-3"]
    assert row[2] == "cashier" and row[5] == "active"
    assert main(["revoke-token", "--db", db, row[0]]) == 0
    refused(store, 401, "token_revoked", lambda: till.get("/v1/members/M0001"))


def test_a_refused_command_exits_with_its_message_and_changes_nothing(store):
    before = db_snapshot(store)
    with pytest.raises(SystemExit) as refused_exit:
        main(["add-account", "--db", store.db.path, "--id", "till 1", "--role", "cashier"])
    assert "account id must be" in str(refused_exit.value.code)
    with pytest.raises(SystemExit) as refused_exit:
        main(["revoke-token", "--db", store.db.path, "tok_nothere"])
    assert "no token" in str(refused_exit.value.code)
    assert db_snapshot(store) == before
