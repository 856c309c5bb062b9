"""The signing key in its own owner-only file, the database owner-only, and key rotation."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from storeserver import codes, keys, kiosks, members, staff
from storeserver.cli import main
from storeserver.clock import ManualClock
from storeserver.errors import ApiError
from storeserver.store import Store, StoreSettings

from .conftest import KIOSK, enroll


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def member_code(key, store, member="M0001") -> str:
    return codes.issue(key, codes.CodeKind.MEMBER, member, int(store.clock.now().timestamp()))


def resolve(store, code: str) -> str:
    with store.db.transaction() as conn:
        return members.resolve_code(store.ledger, conn, store.verify_keys, KIOSK, code).subject


# ---- the key file -------------------------------------------------------------------------


def test_a_new_store_keeps_its_key_in_an_owner_only_file_not_the_database(tmp_path):
    store = Store(tmp_path / "store.db")
    path = tmp_path / "store.keys" / "signing.pem"
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert store.db.get_meta("signing_key") is None
    assert keys.read_key(path).public_key() == store.signing_key.public_key()
    store.close()
    again = Store(tmp_path / "store.db")  # the same key on the next start
    assert again.signing_key.public_key() == keys.read_key(path).public_key()
    again.close()


def test_the_key_file_may_be_elsewhere(tmp_path):
    elsewhere = tmp_path / "secrets" / "store.pem"
    store = Store(tmp_path / "store.db", settings=StoreSettings(signing_key_file=elsewhere))
    assert keys.read_key(elsewhere).public_key() == store.signing_key.public_key()
    assert not (tmp_path / "store.keys").exists()
    store.close()


def test_a_key_in_an_old_database_moves_out_to_the_file(tmp_path, caplog):
    old = Ed25519PrivateKey.generate()
    raw = old.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    Store(tmp_path / "store.db").close()
    (tmp_path / "store.keys" / "signing.pem").unlink()  # as before this change: only in the db
    with sqlite3.connect(tmp_path / "store.db") as conn:
        conn.execute("INSERT INTO meta(key, value) VALUES ('signing_key', ?)", (raw.hex(),))
    store = Store(tmp_path / "store.db")
    assert store.signing_key.public_key() == old.public_key()  # kiosks keep trusting it
    assert store.db.get_meta("signing_key") is None
    assert mode(tmp_path / "store.keys" / "signing.pem") == 0o600
    assert "moved out of the database" in caplog.text
    store.close()


def put_in_db(db, key: Ed25519PrivateKey) -> None:
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO meta(key, value) VALUES ('signing_key', ?)", (raw.hex(),))


def test_a_move_cut_short_after_the_file_was_written_finishes_on_the_next_start(tmp_path):
    store = Store(tmp_path / "store.db")
    key = store.signing_key
    store.close()
    put_in_db(tmp_path / "store.db", key)  # the file is written, the row not yet deleted
    again = Store(tmp_path / "store.db")
    assert again.signing_key.public_key() == key.public_key()
    assert again.db.get_meta("signing_key") is None
    again.close()


def test_a_database_and_a_file_holding_different_keys_stop_the_start(tmp_path):
    Store(tmp_path / "store.db").close()
    put_in_db(tmp_path / "store.db", Ed25519PrivateKey.generate())
    with pytest.raises(keys.KeyFileError, match="holds another"):
        Store(tmp_path / "store.db")


def test_a_key_file_others_may_read_is_refused_at_start(tmp_path):
    Store(tmp_path / "store.db").close()
    path = tmp_path / "store.keys" / "signing.pem"
    os.chmod(path, 0o640)
    with pytest.raises(keys.KeyFileError, match=f"chmod 600 {path}"):
        Store(tmp_path / "store.db")


def test_the_cli_says_chmod_600_for_a_readable_key(tmp_path):
    db = str(tmp_path / "s.db")
    main(["seed-demo", "--db", db])
    path = tmp_path / "s.keys" / "signing.pem"
    os.chmod(path, 0o644)
    with pytest.raises(SystemExit, match="chmod 600"):
        main(["member-code", "--db", db, "M0001"])


# ---- the database file ----------------------------------------------------------------------


def test_the_database_its_wal_and_shm_are_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        store = Store(tmp_path / "store.db")
        with store.db.transaction() as conn:  # something in the WAL
            conn.execute("INSERT INTO meta(key, value) VALUES ('x', 'y')")
        for name in ("store.db", "store.db-wal", "store.db-shm"):
            assert mode(tmp_path / name) == 0o600, name
        store.close()
    finally:
        os.umask(old)


def test_an_existing_readable_database_is_narrowed(tmp_path, caplog):
    Store(tmp_path / "store.db").close()
    os.chmod(tmp_path / "store.db", 0o644)
    Store(tmp_path / "store.db").close()
    assert mode(tmp_path / "store.db") == 0o600
    assert "owner only" in caplog.text


# ---- rotation -------------------------------------------------------------------------------


@pytest.fixture
def rotated(store):
    """The store just after a rotation with the default overlap; yields the old key."""
    old = store.signing_key
    keys.rotate(store.keys.path, int(store.clock.now().timestamp()), 7 * 86400)
    return old


def test_rotation_signs_with_the_new_key_and_trusts_both(store, rotated):
    path = store.keys.path
    assert store.signing_key.public_key() != rotated.public_key()
    assert store.verify_keys == (store.signing_key.public_key(), rotated.public_key())
    assert mode(path) == mode(keys.previous_file(path)) == 0o600


def test_a_code_of_the_previous_key_is_accepted_during_the_overlap(store, rotated):
    assert resolve(store, member_code(rotated, store)) == "M0001"
    assert resolve(store, member_code(store.signing_key, store, "M0002")) == "M0002"


def test_a_code_of_the_previous_key_is_refused_after_finish(store, rotated):
    assert keys.finish_rotation(store.keys.path)
    assert store.verify_keys == (store.signing_key.public_key(),)
    with pytest.raises(ApiError) as refused:
        resolve(store, member_code(rotated, store))
    assert refused.value.code == "code_forged"


def test_the_overlap_ends_by_itself(store, rotated, clock: ManualClock):
    clock.advance(days=7)
    badge = codes.issue(rotated, codes.CodeKind.STAFF, "S0001", int(clock.now().timestamp()), 86400)
    with pytest.raises(staff.BadBadge):
        staff.badge_subject(store.verify_keys, badge, int(clock.now().timestamp()))
    assert not keys.previous_file(store.keys.path).exists()


def test_a_badge_of_the_previous_key_works_during_the_overlap(store, rotated):
    now = int(store.clock.now().timestamp())
    badge = codes.issue(rotated, codes.CodeKind.STAFF, "S0001", now, 86400)
    assert staff.badge_subject(store.verify_keys, badge, now) == "S0001"


def test_a_code_of_an_unknown_key_is_refused(store, rotated):
    with pytest.raises(ApiError) as refused:
        resolve(store, member_code(Ed25519PrivateKey.generate(), store))
    assert refused.value.code == "code_forged"


def test_a_second_rotation_during_the_overlap_is_refused(store, rotated):
    with pytest.raises(keys.KeyFileError, match="rotate-key --finish"):
        keys.rotate(store.keys.path, int(store.clock.now().timestamp()), 86400)


def test_the_kiosks_get_both_keys_at_enrollment_and_in_each_heartbeat(server, store, rotated):
    pub = codes.public_keys_b64([store.signing_key, rotated])
    kiosk = enroll(server, "kiosk-09")
    beat = kiosk.post("/v1/kiosks/heartbeat", {"health": {}}).json()
    assert beat["public_keys"] == pub
    keys.finish_rotation(store.keys.path)
    assert kiosk.post("/v1/kiosks/heartbeat", {"health": {}}).json()["public_keys"] == pub[:1]


def test_enrollment_answers_the_current_key_and_the_list(server, store, rotated):
    with store.db.transaction() as conn:
        code = kiosks.new_enrollment_code(conn, store.clock, "kiosk-09")
    answer = requests.post(
        server.url + "/v1/kiosks/enroll",
        json={"enrollment_code": code, "kiosk_id": "kiosk-09"},
        timeout=10,
    ).json()
    assert answer["public_key"] == codes.public_key_b64(store.signing_key)
    assert answer["public_keys"] == codes.public_keys_b64([store.signing_key, rotated])


def test_rotate_key_command_then_finish(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    main(["seed-demo", "--db", db])
    path = tmp_path / "s.keys" / "signing.pem"
    before = keys.read_key(path).public_key()
    assert main(["rotate-key", "--db", db, "--overlap-days", "3"]) == 0
    assert "trusted for 3 days" in capsys.readouterr().out
    assert keys.read_key(keys.previous_file(path)).public_key() == before
    assert keys.read_key(path).public_key() != before
    assert main(["rotate-key", "--db", db, "--finish"]) == 0
    assert not keys.previous_file(path).exists()


def test_a_running_store_picks_up_a_rotation_made_by_another_process(tmp_path):
    store = Store(tmp_path / "store.db")
    old = store.signing_key.public_key()
    assert main(["rotate-key", "--db", str(tmp_path / "store.db")]) == 0
    assert store.signing_key.public_key() != old and old in store.verify_keys
    store.close()


# ---- the TLS pin command ----------------------------------------------------------------------


def test_tls_pin_prints_the_spki_pin_of_a_certificate(tmp_path, capsys):
    import base64
    import datetime as dt
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "store")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    pem = tmp_path / "cert.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert main(["tls-pin", str(pem)]) == 0
    expected = "sha256/" + base64.b64encode(hashlib.sha256(spki).digest()).decode()
    assert capsys.readouterr().out.strip() == expected
