"""Signed member codes: round trip, tampering, expiry, malformed input."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from storeserver import codes

KEY = Ed25519PrivateKey.generate()
NOW = 1_795_430_000


def test_round_trip():
    text = codes.issue(KEY, codes.CodeKind.MEMBER, "M0002", NOW)
    got = codes.verify(KEY.public_key(), text, NOW + 10)
    assert (got.kind, got.subject, got.issued, got.expires) == (
        codes.CodeKind.MEMBER,
        "M0002",
        NOW,
        NOW + 60,
    )
    assert len(text) < 160  # small enough for a low-density QR on a phone screen


def test_public_key_round_trip():
    text = codes.issue(KEY, codes.CodeKind.STAFF, "S01", NOW)
    pub = codes.load_public_key(codes.public_key_b64(KEY))
    assert codes.verify(pub, text, NOW).kind is codes.CodeKind.STAFF


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (
            lambda t: t.replace(".M0002.", ".M0003."),
            "forged",
        ),  # another member's id under my signature
        # a flipped character inside the signature (the last ones also carry padding bits)
        (lambda t: t[:-10] + ("A" if t[-10] != "A" else "B") + t[-9:], "forged"),
        (lambda t: t.replace("LK1.", "LK2."), "malformed"),
        (lambda t: t + ".x", "malformed"),
        (lambda t: t.rsplit(".", 1)[0] + ".!!!", "malformed"),
        (lambda t: "https://example.com/not-a-member-code", "malformed"),
        (lambda t: "二维码", "malformed"),
    ],
)
def test_tampered_codes_are_refused(mutate, reason):
    text = codes.issue(KEY, codes.CodeKind.MEMBER, "M0002", NOW)
    with pytest.raises(codes.CodeError) as err:
        codes.verify(KEY.public_key(), mutate(text), NOW)
    assert err.value.reason == reason


def test_code_from_another_store_is_forged():
    other = Ed25519PrivateKey.generate()
    text = codes.issue(other, codes.CodeKind.MEMBER, "M0002", NOW)
    with pytest.raises(codes.CodeError, match="not issued by this store"):
        codes.verify(KEY.public_key(), text, NOW)


def test_expiry_and_future_codes():
    text = codes.issue(KEY, codes.CodeKind.MEMBER, "M0002", NOW)
    with pytest.raises(codes.CodeError) as err:
        codes.verify(KEY.public_key(), text, NOW + 60)
    assert err.value.reason == "expired"
    with pytest.raises(codes.CodeError) as err:
        codes.verify(KEY.public_key(), text, NOW - codes.CLOCK_SKEW_S - 1)
    assert err.value.reason == "not_yet_valid"


@given(st.text(max_size=300))
def test_arbitrary_text_raises_only_code_error(text):
    with pytest.raises(codes.CodeError):
        codes.verify(KEY.public_key(), text, NOW)


@pytest.mark.parametrize("junk", ["!!*~", "=", "+/"])
def test_one_spelling_per_signature(junk):
    text = codes.issue(KEY, codes.CodeKind.MEMBER, "M0002", NOW)
    with pytest.raises(codes.CodeError) as err:
        codes.verify(KEY.public_key(), text + junk, NOW)
    assert err.value.reason == "malformed"
