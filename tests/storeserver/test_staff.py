"""Staff sign-in: badge (signed code, kind S) + PIN, counted failures and escalating locks
(the rule at each of its boundaries: test_staff_lockout.py)."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import sys
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storeserver import codes, demo, staff, staff_revocation
from storeserver.cli import main
from storeserver.db import Database
from storeserver.errors import ApiError
from storeserver.staff_revocation import revoked

from .conftest import KIOSK, OTHER_KIOSK, db_snapshot, enroll

VERIFY = "/v1/staff/verify"


def badge(store, staff_id: str = "S0001", days: int = 365) -> str:
    with store.db.transaction() as conn:
        return staff.issue_badge(conn, store.clock, store.signing_key, staff_id, days)["code"]


def row(store, staff_id: str = "S0001"):
    return store.db.connection().execute("SELECT * FROM staff WHERE id = ?", (staff_id,)).fetchone()


# ---- PIN hashes -------------------------------------------------------------------------------


def test_a_pin_is_stored_salted_and_never_in_clear(store):
    stored = row(store)["pin_hash"]
    alg, n, r, p, salt, digest = stored.split("$")
    assert (alg, int(n), int(r), int(p)) == ("scrypt", staff.SCRYPT_N, staff.SCRYPT_R, 1)
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(digest)) == 32
    assert "246810" not in stored
    assert staff.pin_matches(stored, "246810") and not staff.pin_matches(stored, "246811")
    # the same PIN with another salt gives another hash
    assert staff.hash_pin("246810") != staff.hash_pin("246810")


def test_a_damaged_hash_or_garbage_pin_never_matches():
    good = staff.hash_pin("135791")
    assert not staff.pin_matches(good[:-4], "135791")
    assert not staff.pin_matches("md5$abc", "135791")
    assert not staff.pin_matches(good, "135 791")
    assert not staff.pin_matches(good, "١٣٥٧٩١")  # Arabic-Indic digits are not ASCII digits


def legacy_hash(pin: str) -> str:
    """A hash as add-staff made it when 4-digit PINs were allowed."""
    salt = b"0123456789abcdef"
    digest = staff._scrypt(pin, salt, staff.SCRYPT_N, staff.SCRYPT_R, staff.SCRYPT_P, 32)
    return "$".join(["scrypt", str(staff.SCRYPT_N), "8", "1", staff._b64(salt), staff._b64(digest)])


def test_a_new_pin_has_six_digits_but_an_old_four_digit_pin_still_signs_in(kiosk, store):
    for short in ("1234", "12345"):
        with pytest.raises(ApiError, match="6 to 12 digits"):
            staff.hash_pin(short)
        with store.db.transaction() as conn, pytest.raises(ApiError, match="6 to 12 digits"):
            staff.add_staff(conn, store.clock, "S0001", "x", short, replace=True)
    with store.db.transaction() as conn:  # a PIN set before the rule
        conn.execute("UPDATE staff SET pin_hash = ? WHERE id = 'S0001'", (legacy_hash("2468"),))
    assert kiosk.post(VERIFY, {"badge": badge(store), "pin": "2468"}).status_code == 200


# ---- the endpoint -----------------------------------------------------------------------------


def test_right_badge_and_pin_return_the_staff_member(kiosk, store):
    resp = kiosk.post(VERIFY, {"badge": badge(store), "pin": "246810"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"staff_id": "S0001", "name": "王店长 / Manager Wang"}


def test_it_needs_a_kiosk_token(anon, staff, store):
    body = {"badge": badge(store), "pin": "246810"}
    assert anon.post(VERIFY, body).status_code == 401
    # a store manager's token is not a kiosk token
    assert staff.post(VERIFY, body).json()["error"] == "forbidden_role"
    assert row(store)["failed_count"] == 0


def test_a_wrong_pin_is_403_with_attempts_left_and_is_counted(kiosk, store):
    code = badge(store)
    resp = kiosk.post(VERIFY, {"badge": code, "pin": "0000"})
    assert resp.status_code == 403
    body = resp.json()
    assert body["error"] == "bad_pin" and "4 attempts left" in body["message"]
    assert set(body) == {"error", "message"}
    assert row(store)["failed_count"] == 1  # committed, although refused
    assert "3 attempts left" in kiosk.post(VERIFY, {"badge": code, "pin": "0000"}).json()["message"]


def test_five_wrong_pins_lock_for_five_minutes_then_release(kiosk, other_kiosk, store, clock):
    code = badge(store)
    for _ in range(4):
        assert kiosk.post(VERIFY, {"badge": code, "pin": "1111"}).status_code == 403
    fifth = kiosk.post(VERIFY, {"badge": code, "pin": "1111"})
    assert fifth.status_code == 423
    assert fifth.json()["error"] == "staff_locked" and "300 s" in fifth.json()["message"]
    assert fifth.headers["Retry-After"] == "300"
    # locked everywhere, even with the right PIN, and a locked attempt is not counted
    clock.advance(seconds=100)
    locked = other_kiosk.post(VERIFY, {"badge": code, "pin": "246810"})
    assert locked.status_code == 423 and locked.headers["Retry-After"] == "200"
    assert "200 s" in locked.json()["message"]
    assert set(locked.json()) == {"error", "message"}
    clock.advance(seconds=199)
    assert kiosk.post(VERIFY, {"badge": code, "pin": "246810"}).headers["Retry-After"] == "1"
    clock.advance(seconds=1)
    assert kiosk.post(VERIFY, {"badge": code, "pin": "246810"}).status_code == 200
    # the lockout is a staff alert of the kiosk where it happened
    alerts = store.db.connection().execute("SELECT kiosk_id, kind, detail FROM alerts").fetchall()
    assert [(a["kiosk_id"], a["kind"]) for a in alerts] == [(KIOSK, "staff_locked")]
    assert json.loads(alerts[0]["detail"])["staff_id"] == "S0001"


def test_a_right_pin_resets_the_count(kiosk, store):
    code = badge(store)
    for _ in range(4):
        kiosk.post(VERIFY, {"badge": code, "pin": "1111"})
    assert kiosk.post(VERIFY, {"badge": code, "pin": "246810"}).status_code == 200
    assert row(store)["failed_count"] == 0
    for _ in range(4):
        assert kiosk.post(VERIFY, {"badge": code, "pin": "1111"}).status_code == 403


def test_waiting_between_wrong_pins_does_not_start_a_new_count(kiosk, store, clock):
    code = badge(store)
    for _ in range(4):
        kiosk.post(VERIFY, {"badge": code, "pin": "1111"})
        clock.advance(hours=1)
    assert kiosk.post(VERIFY, {"badge": code, "pin": "1111"}).status_code == 423


def wrong(kiosk, code: str, times: int) -> list:
    return [kiosk.post(VERIFY, {"badge": code, "pin": "111111"}) for _ in range(times)]


def test_locks_escalate_5_minutes_1_hour_then_until_a_manager_unlocks(kiosk, store, clock):
    code = badge(store)
    assert wrong(kiosk, code, 5)[-1].headers["Retry-After"] == "300"
    clock.advance(seconds=300)
    # a right PIN on the day of the lock resets the run of 5, not the level
    assert kiosk.post(VERIFY, {"badge": code, "pin": "246810"}).status_code == 200
    tenth = wrong(kiosk, code, 5)[-1]
    assert tenth.status_code == 423 and tenth.headers["Retry-After"] == "3600"
    clock.advance(seconds=3600)
    *_, fifteenth = wrong(kiosk, code, 5)
    assert fifteenth.status_code == 423 and "Retry-After" not in fifteenth.headers
    assert "unlock-staff S0001" in fifteenth.json()["message"]
    clock.advance(days=30)  # waiting does not help
    refused = kiosk.post(VERIFY, {"badge": code, "pin": "246810"})
    assert refused.status_code == 423 and "Retry-After" not in refused.headers
    details = [
        json.loads(a["detail"])
        for a in store.db.connection().execute("SELECT detail FROM alerts ORDER BY id")
    ]
    assert [(d["level"], d["until_unlocked"]) for d in details] == [
        (1, False), (2, False), (3, True)
    ]  # fmt: skip
    assert main(["unlock-staff", "--db", store.db.path, "S0001"]) == 0
    assert kiosk.post(VERIFY, {"badge": code, "pin": "246810"}).status_code == 200
    assert row(store)["lock_level"] == 0 and row(store)["until_reset"] == 0


def test_a_right_pin_on_a_later_store_day_lowers_the_level(kiosk, store, clock):
    code = badge(store)
    wrong(kiosk, code, 5)  # 10:00 in Shanghai: lock 1
    clock.advance(hours=14, seconds=-1)  # 23:59:59 the same store day (Asia/Shanghai)
    assert kiosk.post(VERIFY, {"badge": code, "pin": "246810"}).status_code == 200
    assert row(store)["lock_level"] == 1
    clock.advance(seconds=1)  # 00:00 the next store day
    assert kiosk.post(VERIFY, {"badge": code, "pin": "246810"}).status_code == 200
    assert row(store)["lock_level"] == 0
    assert wrong(kiosk, code, 5)[-1].headers["Retry-After"] == "300"  # lock 1 again


def test_twenty_wrong_pins_in_a_store_day_lock_until_unlocked(kiosk, store, clock):
    code = badge(store)
    for _ in range(4):  # the staff member's own typos, each followed by the right PIN
        assert [r.status_code for r in wrong(kiosk, code, 4)] == [403] * 4
        assert kiosk.post(VERIFY, {"badge": code, "pin": "246810"}).status_code == 200
    nineteenth = wrong(kiosk, code, 3)[-1]
    assert "1 attempt left" in nineteenth.json()["message"]
    twentieth = wrong(kiosk, code, 1)[0]
    assert twentieth.status_code == 423 and "Retry-After" not in twentieth.headers
    with store.db.transaction() as conn:  # add-staff --replace unlocks too
        staff.add_staff(conn, store.clock, "S0001", "王店长", "246810", replace=True)
    assert kiosk.post(VERIFY, {"badge": code, "pin": "246810"}).status_code == 200


def test_an_old_database_gains_the_lockout_columns(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the staff table as first released
        conn.execute(
            "CREATE TABLE staff (id TEXT PRIMARY KEY, name TEXT NOT NULL, pin_hash TEXT NOT NULL, "
            "failed_count INTEGER NOT NULL DEFAULT 0, last_failed_at TEXT, locked_until TEXT, "
            "active INTEGER NOT NULL DEFAULT 1, created_at TEXT NOT NULL)"
        )
        conn.execute("INSERT INTO staff(id, name, pin_hash, created_at) VALUES ('S1','a','h','t')")
    conn.close()
    from storeserver.migrations.runner import migrate  # Alembic: the [server] extra

    migrate(str(path), say=lambda _: None)  # revision 0001 runs the old open-time upgrades
    db = Database(path)
    r = db.connection().execute("SELECT * FROM staff").fetchone()
    assert (r["lock_level"], r["fail_day_count"], r["until_reset"], r["last_lock_day"]) == (
        0, 0, 0, None
    )  # fmt: skip
    db.close()


def test_the_revocation_list_names_disabled_and_unlock_waiting_staff(store):
    with store.db.transaction() as conn:
        empty = revoked(conn)
        staff.set_active(conn, "S0002", False)
        one = revoked(conn)
        conn.execute("UPDATE staff SET until_reset = 1 WHERE id = 'S0001'")
        two = revoked(conn)
        staff.unlock(conn, "S0001")
    assert (empty["ids"], one["ids"], two["ids"]) == ([], ["S0002"], ["S0001", "S0002"])
    assert len({empty["version"], one["version"], two["version"]}) == 3
    with store.db.transaction() as conn:
        assert revoked(conn) == one  # the version is the list's, not a counter


def test_revoked_badges_are_refused_and_a_newer_one_works(kiosk, store, clock):
    old = badge(store)
    clock.advance(days=30)
    with store.db.transaction() as conn:
        revoked_at = staff_revocation.revoke_badges(conn, store.clock, "S0001")
    resp = kiosk.post(VERIFY, {"badge": old, "pin": "246810"})
    assert resp.status_code == 403 and resp.json()["error"] == "bad_badge"
    assert "revoked" in resp.json()["message"] and row(store)["failed_count"] == 0
    new = badge(store)  # printed in the second of the revocation, or later
    assert kiosk.post(VERIFY, {"badge": new, "pin": "246810"}).status_code == 200
    with store.db.transaction() as conn:
        listed = revoked(conn)
    assert revoked_at == int(clock.now().timestamp())
    assert listed["ids"] == [] and listed["badges_before"] == {"S0001": revoked_at}
    assert main(["revoke-badges", "--db", store.db.path, "S0002"]) == 0  # the real clock
    with pytest.raises(SystemExit, match="no staff with id 'S0009'"):
        main(["revoke-badges", "--db", store.db.path, "S0009"])


def test_the_heartbeat_answer_carries_the_revocation_list(kiosk, store):
    first = kiosk.post("/v1/kiosks/heartbeat", {"health": {}}).json()
    assert first["revoked_staff"]["ids"] == []
    assert main(["disable-staff", "--db", store.db.path, "S0002"]) == 0
    later = kiosk.post("/v1/kiosks/heartbeat", {"health": {}}).json()
    assert later["revoked_staff"]["ids"] == ["S0002"]
    assert later["revoked_staff"]["version"] != first["revoked_staff"]["version"]


def test_lockout_is_per_staff_member(kiosk, store):
    code = badge(store)
    for _ in range(5):
        kiosk.post(VERIFY, {"badge": code, "pin": "1111"})
    assert kiosk.post(VERIFY, {"badge": badge(store, "S0002"), "pin": "135791"}).status_code == 200


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda s: "LK1.S.S0001.garbage", "not a staff badge"),
        (
            lambda s: codes.issue(
                s.signing_key, codes.CodeKind.MEMBER, "M0001", int(s.clock.now().timestamp())
            ),
            "member code, not a staff badge",
        ),
        (
            lambda s: codes.issue(
                Ed25519PrivateKey.generate(),
                codes.CodeKind.STAFF,
                "S0001",
                int(s.clock.now().timestamp()),
                validity_s=86400,
            ),
            "not issued by this store",
        ),
        (
            lambda s: codes.issue(
                s.signing_key,
                codes.CodeKind.STAFF,
                "S0001",
                int(s.clock.now().timestamp()) - 86400,
                validity_s=3600,
            ),
            "has expired",
        ),
        (
            lambda s: codes.issue(
                s.signing_key,
                codes.CodeKind.STAFF,
                "S0001",
                int(s.clock.now().timestamp()),
                validity_s=(staff.BADGE_MAX_DAYS + 1) * 86400,
            ),
            "not plausible",
        ),
        (
            lambda s: codes.issue(
                s.signing_key,
                codes.CodeKind.STAFF,
                "S0009",
                int(s.clock.now().timestamp()),
                validity_s=86400,
            ),
            "no active staff S0009",
        ),
    ],
    ids=["malformed", "member-code", "forged", "expired", "window", "unknown-staff"],
)
def test_a_bad_badge_is_403_bad_badge_and_changes_nothing(kiosk, store, make, words):
    code = make(store)
    before = db_snapshot(store)
    resp = kiosk.post(VERIFY, {"badge": code, "pin": "246810"})
    assert resp.status_code == 403
    assert resp.json()["error"] == "bad_badge" and words in resp.json()["message"]
    assert db_snapshot(store) == before


def test_a_badge_scanned_every_day_is_not_a_replay(kiosk, store, clock):
    code = badge(store)
    for _ in range(3):
        assert kiosk.post(VERIFY, {"badge": code, "pin": "246810"}).status_code == 200
        clock.advance(days=1)
    assert store.db.connection().execute("SELECT COUNT(*) FROM seen_nonces").fetchone()[0] == 0


def test_a_badge_expires_after_its_days(kiosk, store, clock):
    code = badge(store, days=2)
    clock.advance(days=2)
    resp = kiosk.post(VERIFY, {"badge": code, "pin": "246810"})
    assert resp.json()["error"] == "bad_badge" and "staff-badge S0001" in resp.json()["message"]


def test_a_disabled_staff_member_is_refused_and_replace_re_enables(kiosk, store):
    code = badge(store)
    with store.db.transaction() as conn:
        staff.set_active(conn, "S0001", False)
    resp = kiosk.post(VERIFY, {"badge": code, "pin": "246810"})
    assert resp.status_code == 403 and resp.json()["error"] == "bad_badge"
    with store.db.transaction() as conn:
        staff.add_staff(conn, store.clock, "S0001", "王店长", "864200", replace=True)
    assert kiosk.post(VERIFY, {"badge": code, "pin": "246810"}).json()["error"] == "bad_pin"
    assert kiosk.post(VERIFY, {"badge": code, "pin": "864200"}).json()["name"] == "王店长"


def test_a_pin_that_is_not_4_to_12_digits_is_422_and_not_counted(kiosk, store):
    for pin in ("12", "abcd", "1234567890123", ""):
        resp = kiosk.post(VERIFY, {"badge": badge(store), "pin": pin})
        assert resp.status_code == 422, pin
    assert row(store)["failed_count"] == 0


def test_add_staff_refuses_a_duplicate_and_bad_values(store):
    with store.db.transaction() as conn:
        with pytest.raises(ApiError, match="already exists"):
            staff.add_staff(conn, store.clock, "S0001", "x", "123456")
        with pytest.raises(ApiError, match="6 to 12 digits"):
            staff.add_staff(conn, store.clock, "S0003", "x", "12a456")
        with pytest.raises(ApiError, match="must match"):
            staff.add_staff(conn, store.clock, "S 3", "x", "123456")
        with pytest.raises(ApiError, match="1 to 1098 days"):
            staff.issue_badge(conn, store.clock, store.signing_key, "S0001", 5000)


# ---- demo and command line ----------------------------------------------------------------------


def test_demo_staff_are_seeded_with_their_pins(store):
    for staff_id, name, pin in demo.STAFF:
        r = row(store, staff_id)
        assert r["name"] == name and r["active"] == 1
        assert staff.pin_matches(r["pin_hash"], pin)
    badges = demo.staff_badges(store)
    assert [(b["staff_id"], b["pin"]) for b in badges] == [("S0001", "246810"), ("S0002", "135791")]
    parsed, _, _ = codes.parse(badges[0]["code"])
    assert parsed.kind is codes.CodeKind.STAFF
    assert parsed.expires - parsed.issued == 365 * 86400


def test_cli_add_staff_badge_and_disable(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    assert (
        main(["add-staff", "--db", db, "--id", "S0007", "--name", "赵 Zhao", "--pin", "975310"])
        == 0
    )
    assert "added" in capsys.readouterr().out
    assert main(["staff-badge", "--db", db, "S0007", "--days", "30", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    parsed, _, _ = codes.parse(out["code"])
    assert (parsed.kind, parsed.subject) == (codes.CodeKind.STAFF, "S0007")
    assert parsed.expires - parsed.issued == 30 * 86400
    with pytest.raises(SystemExit, match="already exists"):
        main(["add-staff", "--db", db, "--id", "S0007", "--name", "x", "--pin", "123456"])
    assert main(["disable-staff", "--db", db, "S0007"]) == 0
    with pytest.raises(SystemExit, match="no active staff with id 'S0007'"):
        main(["staff-badge", "--db", db, "S0007"])
    with pytest.raises(SystemExit, match="6 to 12 digits"):
        main(["add-staff", "--db", db, "--id", "S0008", "--name", "x", "--pin", "1234"])
    with pytest.raises(SystemExit, match="no staff with id 'S0009'"):
        main(["unlock-staff", "--db", db, "S0009"])


def test_cli_seed_demo_prints_the_staff_badges_on_stderr(tmp_path):
    db = str(tmp_path / "s.db")
    done = subprocess.run(
        [sys.executable, "-m", "storeserver.cli", "seed-demo", "--db", db],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.splitlines()[0].startswith("M0001\t")
    staff_lines = [line.split("\t") for line in done.stderr.splitlines() if "\t" in line]
    assert [(f[0], f[1]) for f in staff_lines] == [("S0001", "PIN 246810"), ("S0002", "PIN 135791")]
    assert all(f[3].startswith("LK1.S.") for f in staff_lines)


def test_two_kiosks_racing_wrong_pins_lock_exactly_once(server, store):
    """Concurrent wrong PINs are counted one by one: never more than one lock per five."""
    kiosks = [enroll(server, KIOSK), enroll(server, OTHER_KIOSK)]
    code = badge(store)
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt(k):
        for _ in range(3):
            s = k.post(VERIFY, {"badge": code, "pin": "1111"}).status_code
            with lock:
                statuses.append(s)

    threads = [threading.Thread(target=attempt, args=(k,)) for k in kiosks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(statuses) == [403] * 4 + [423] * 2
    alerts = store.db.connection().execute("SELECT COUNT(*) FROM alerts").fetchone()[0]
    assert alerts == 1
