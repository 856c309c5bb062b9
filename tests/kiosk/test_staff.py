"""kiosk.domain.staff: badge check, lockout rules and the offline PIN hash (pure)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.domain.staff import (
    BADGE_MAX_WINDOW_S,
    CachedPin,
    PinHash,
    RevokedStaff,
    ScryptParams,
    StaffAuthError,
    StaffLocked,
    StaffRejected,
    check_pin_format,
    hash_pin,
    pin_matches,
    verify_badge,
)
from kiosk.errors import KioskError
from kiosk.i18n import render
from storeserver import codes

NOW = 1_795_430_568
YEAR = 365 * 86400
KEY = Ed25519PrivateKey.generate()
CHEAP = ScryptParams(n=2**10, r=8, p=1)  # the rules do not depend on the cost


def make_badge(
    subject: str = "S0001",
    kind: codes.CodeKind = codes.CodeKind.STAFF,
    issued: int = NOW,
    validity: int = YEAR,
    key: Ed25519PrivateKey = KEY,
) -> str:
    return codes.issue(key, kind, subject, issued, validity_s=validity)


# ---- badge --------------------------------------------------------------------------------------


def test_a_year_long_badge_from_the_server_verifies_again_and_again():
    badge = make_badge()
    for day in range(0, 364, 60):  # a card scanned on many days: no replay check
        code = verify_badge(badge, KEY.public_key(), NOW + day * 86400)
        assert code.subject == "S0001" and code.expires - code.issued == YEAR


@pytest.mark.parametrize(
    ("badge", "now", "english", "detail"),
    [
        ("LK1.S.S0001.nope", NOW, "show your staff badge", "7 fields"),
        (make_badge(kind=codes.CodeKind.MEMBER, validity=60), NOW, "not a staff badge", "member"),
        (
            make_badge(key=Ed25519PrivateKey.generate()),
            NOW,
            "not issued by this store",
            "does not verify",
        ),
        (make_badge(), NOW + YEAR, "Badge expired", "print a new one"),
        (make_badge(issued=NOW + 600), NOW, "call a technician", "kiosk clock"),
        (make_badge(validity=BADGE_MAX_WINDOW_S + 1), NOW, "show your staff badge", "window"),
    ],
    ids=["malformed", "member-code", "forged", "expired", "future", "window"],
)
def test_a_bad_badge_is_rejected_in_both_languages(badge, now, english, detail):
    with pytest.raises(StaffRejected) as info:
        verify_badge(badge, KEY.public_key(), now)
    err = info.value
    assert err.reason == "bad_badge" and err.attempts_left is None
    text = render(err)
    assert english in text.en and text.zh and text.zh != text.en
    assert detail in err.detail
    assert isinstance(err, KioskError) and str(err) == f"{text.zh} / {text.en} ({err.detail})"


@pytest.mark.parametrize(
    ("kind", "issued", "validity", "now"),
    [
        (codes.CodeKind.MEMBER, NOW, 60, NOW + 3600),  # expired too
        (codes.CodeKind.TECHNICIAN, NOW + 600, 60, NOW),  # from the future too
        (codes.CodeKind.MEMBER, NOW, BADGE_MAX_WINDOW_S + 1, NOW),  # implausible window too
    ],
)
def test_a_code_of_another_kind_is_not_a_badge_whatever_else_is_wrong(kind, issued, validity, now):
    with pytest.raises(StaffRejected) as info:  # the kind first, as the store server's check
        verify_badge(make_badge(kind=kind, issued=issued, validity=validity), KEY.public_key(), now)
    assert "not a staff badge" in render(info.value).en
    assert f"a {kind.name.lower()} code, not a badge" == info.value.detail


def test_the_pin_format_is_4_to_12_ascii_digits():
    for good in ("1234", "000000000000"):
        check_pin_format(good)
    for bad in ("123", "1234567890123", "12a4", "١٢٣٤", " 1234", None):
        with pytest.raises(StaffRejected, match="4 至 12"):
            check_pin_format(bad)


# ---- PIN hash -----------------------------------------------------------------------------------


def test_a_pin_hash_is_salted_checks_the_pin_and_holds_no_pin():
    first, second = hash_pin("246810", CHEAP), hash_pin("246810", CHEAP)
    assert first.salt != second.salt and first.digest != second.digest
    assert pin_matches(first, "246810") and pin_matches(second, "246810")
    for wrong in ("246811", "0246810", "", "246 810"):
        assert not pin_matches(first, wrong)
    record = first.to_record()
    assert set(record) == {"alg", "n", "r", "p", "salt", "hash"} and record["alg"] == "scrypt"
    assert "246810" not in repr(record)
    assert PinHash.from_record(record) == first


def test_the_default_cost_is_the_documented_scrypt():
    h = hash_pin("135791")
    assert (h.params.n, h.params.r, h.params.p) == (2**16, 8, 1)  # 64 MiB
    assert len(h.salt) == 16 and len(h.digest) == 32


@pytest.mark.parametrize(
    "change",
    [
        {"alg": "md5"},
        {"n": 2**30},  # would ask for a gigabyte: refused before hashing
        {"n": 1000},
        {"r": 0},
        {"p": "1"},
        {"salt": "not base64!"},
        {"salt": "AAAA"},  # 3 bytes
        {"hash": "AAAA"},  # a cut-short digest must not match a cut-short check
    ],
)
def test_a_damaged_hash_record_is_refused(change):
    with pytest.raises(ValueError):
        PinHash.from_record({**hash_pin("246810", CHEAP).to_record(), **change})


def test_a_cached_pin_is_fresh_for_its_age_only():
    cached = CachedPin("S0001", "王店长", hash_pin("246810", CHEAP), cached_at=NOW)
    day = 86400
    assert cached.is_fresh(NOW + 30 * day, 30 * day)
    assert not cached.is_fresh(NOW + 30 * day + 1, 30 * day)
    assert not cached.is_fresh(NOW - 3600, 30 * day)  # the clock went back: not trusted
    assert CachedPin.from_record("S0001", cached.to_record()) == cached
    with pytest.raises(ValueError):
        CachedPin.from_record("S0001", {**cached.to_record(), "cached_at": None})


def test_errors_carry_a_text_key_with_the_wait_and_a_detail_for_the_log():
    locked = StaffLocked(300, detail="staff S0001")
    assert locked.seconds_left == 300
    assert (locked.key, locked.fields) == ("staff.auth.locked_minutes", {"minutes": 5})
    assert "5 分钟" in render(locked).zh and "5 min" in render(locked).en
    assert str(locked) == f"{render(locked).zh} / {render(locked).en} (staff S0001)"  # the log's
    assert "40 s" in render(StaffLocked(40)).en
    assert isinstance(locked, StaffAuthError)


# ---- the revoked staff list ---------------------------------------------------------------------


def test_the_revoked_list_refuses_listed_staff_and_badges_issued_before_the_cut():
    revoked = RevokedStaff.from_record(
        {"version": "v1", "ids": ["S0002"], "badges_before": {"S0001": NOW}}
    )
    key = KEY.public_key()
    assert revoked.refuses(verify_badge(make_badge("S0002"), key, NOW))
    assert revoked.refuses(verify_badge(make_badge("S0001", issued=NOW - 1), key, NOW))
    assert not revoked.refuses(verify_badge(make_badge("S0001", issued=NOW), key, NOW))
    assert not revoked.refuses(verify_badge(make_badge("S0003", issued=NOW - 1), key, NOW))
    assert RevokedStaff.from_record(revoked.to_record()) == revoked
    older_server = RevokedStaff.from_record({"version": "v0", "ids": []})
    assert older_server.badges_before == {}
    for junk in (
        {"version": "v", "ids": [], "badges_before": {"S0001": "soon"}},
        {"version": "v", "ids": [], "badges_before": {"S 1": 5}},
        {"version": "v", "ids": [], "badges_before": [["S0001", 5]]},
    ):
        with pytest.raises(ValueError):
            RevokedStaff.from_record(junk)
