"""Technician codes: issued for one enrolled kiosk, short-lived, recorded."""

from __future__ import annotations

import json

import pytest

from storeserver import codes, kiosks
from storeserver.cli import main
from storeserver.errors import ApiError
from storeserver.store import Store
from storeserver.technicians import issue_technician_code

from .conftest import KIOSK, account, db_snapshot, refused


def issue(store, kiosk_id=KIOSK, minutes=15, by="alice"):
    with store.db.transaction() as conn:
        return issue_technician_code(conn, store.clock, store.signing_key, kiosk_id, minutes, by)


def test_a_code_names_its_kiosk_inside_the_signature_and_is_recorded(store, kiosk):
    issued = issue(store, minutes=20)
    code = codes.verify(
        store.signing_key.public_key(), issued.code, int(store.clock.now().timestamp())
    )
    assert (code.kind, code.subject, code.nonce) == (codes.CodeKind.TECHNICIAN, KIOSK, issued.nonce)
    assert code.expires - code.issued == 20 * 60
    row = store.db.connection().execute("SELECT * FROM technician_codes").fetchone()
    assert dict(row) == {
        "nonce": issued.nonce,
        "kiosk_id": KIOSK,
        "issued_by": "alice",
        "issued_at": issued.issued_at,
        "expires_at": issued.expires_at,
    }


@pytest.mark.parametrize(
    ("kiosk_id", "minutes", "by", "error"),
    [
        (KIOSK, 61, "alice", "invalid_minutes"),
        (KIOSK, 0, "alice", "invalid_minutes"),
        (KIOSK, True, "alice", "invalid_minutes"),
        (KIOSK, 15, " ", "invalid_issued_by"),
        ("kiosk-77", 15, "alice", "unknown_kiosk"),
    ],
)
def test_a_refused_code_records_nothing(store, kiosk, kiosk_id, minutes, by, error):
    before = db_snapshot(store)
    with pytest.raises(ApiError) as refused:
        issue(store, kiosk_id, minutes, by)
    assert refused.value.code == error and 400 <= refused.value.status < 500
    assert db_snapshot(store) == before


def test_the_command_line_issues_one_for_an_enrolled_kiosk(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    store = Store(db)
    try:
        with store.db.transaction() as conn:
            code = kiosks.new_enrollment_code(conn, store.clock, "kiosk-07")
            kiosks.enroll(conn, store.clock, code, "kiosk-07")
    finally:
        store.close()
    assert main(["technician-code", "--db", db, "--kiosk", "kiosk-07", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    parsed = codes.parse(out["code"])[0]
    assert parsed.subject == "kiosk-07" and parsed.expires - parsed.issued == 15 * 60
    assert out["issued_by"].endswith("(command line)")
    with pytest.raises(SystemExit) as refused:
        main(["technician-code", "--db", db, "--kiosk", "kiosk-07", "--minutes", "90"])
    assert "1 to 60 minutes" in str(refused.value.code)
    with pytest.raises(SystemExit) as unknown:
        main(["technician-code", "--db", db, "--kiosk", "kiosk-08", "--by", "bob"])
    assert "no enrolled kiosk 'kiosk-08'" in str(unknown.value.code)


def test_an_admin_or_technician_asks_the_api_for_a_code(store, server, kiosk):
    technician = account(server, "technician")
    resp = technician.post(f"/v1/kiosks/{KIOSK}/technician-codes", {"minutes": 10})
    assert resp.status_code == 200, resp.text
    issued = resp.json()
    code = codes.verify(
        store.signing_key.public_key(), issued["code"], int(store.clock.now().timestamp())
    )
    assert (code.subject, code.expires - code.issued) == (KIOSK, 600)
    assert issued["issued_by"].startswith("account:technician-")  # who asked, as recorded
    for role in ("cashier", "manager", "member-app"):
        client = account(server, role, "M0001" if role == "member-app" else None)
        refused(
            store,
            403,
            "forbidden_role",
            lambda c=client: c.post(f"/v1/kiosks/{KIOSK}/technician-codes", {}),
        )
    refused(
        store,
        404,
        "unknown_kiosk",
        lambda: technician.post("/v1/kiosks/kiosk-99/technician-codes", {}),
    )
