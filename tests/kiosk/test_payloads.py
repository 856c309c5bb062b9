"""kiosk.domain.payloads: payload kind by prefix, and payload bytes to text."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from kiosk.domain.payloads import classify_payload, payload_text
from kiosk.ports import PayloadKind
from storeserver import codes


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (codes.CodeKind.MEMBER, PayloadKind.MEMBER),
        (codes.CodeKind.STAFF, PayloadKind.STAFF),
        (codes.CodeKind.TECHNICIAN, PayloadKind.TECHNICIAN),
    ],
)
def test_real_signed_codes_are_classified_by_their_kind(kind, expected):
    text = codes.issue(Ed25519PrivateKey.generate(), kind, "M0002", now_s=1_700_000_000)
    assert classify_payload(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "https://example.com/LK1.M.M0001",
        "LK1.X.M0001.1.2.0123456789abcdef.sig",  # unknown kind letter
        "LK1.M",  # prefix without its separator
        "lk1.m.M0001",  # the format is case-sensitive
        "LK2.M.M0001",
        "LK1M.M0001",
        "WIFI:S:store;T:WPA;P:secret;;",
        "会员 LK1.M.M0001",
    ],
)
def test_anything_else_is_unknown(text):
    assert classify_payload(text) is PayloadKind.UNKNOWN


def test_surrounding_whitespace_is_ignored_as_the_code_parser_ignores_it():
    assert classify_payload("  LK1.S.staff-01.1.2.x.y\n") is PayloadKind.STAFF


@given(st.text())
def test_classify_never_raises_and_needs_the_prefix(text):
    kind = classify_payload(text)
    assert (kind is PayloadKind.UNKNOWN) == (
        not text.strip().startswith(("LK1.M.", "LK1.S.", "LK1.T."))
    )


def test_utf8_payload_reads_as_utf8():
    assert payload_text("会员积分 LK1".encode()) == "会员积分 LK1"


def test_gb18030_payload_falls_back_to_gb18030():
    assert payload_text("会员积分".encode("gb18030")) == "会员积分"


def test_bytes_neither_utf8_nor_gb18030_get_replacement_characters():
    text = payload_text(b"ok\xff\xfe")
    assert text.startswith("ok") and "\ufffd" in text


@given(st.binary())
def test_any_bytes_become_text_without_raising(data):
    assert isinstance(payload_text(data), str)


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"])))
def test_any_text_round_trips_through_utf8(text):
    assert payload_text(text.encode("utf-8")) == text
