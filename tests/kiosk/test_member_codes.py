"""Offline member-code verification, and a cross-check against the store server's own verifier."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.domain.member_codes import (
    CodeKind,
    CodeRejected,
    CodeVerifier,
    MemoryNonceStore,
    ReplayGuard,
    TrustedKeys,
    VerifiedCode,
    load_public_key,
    load_public_keys,
    trusted_keys,
    verify_code,
)
from kiosk.errors import ConfigError, KioskError
from storeserver import codes as server_codes

NOW = 1_795_430_568
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUB = KEY.public_key()
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def mint(
    body: str,
    key: Ed25519PrivateKey = KEY,
) -> str:
    """Sign any body, as a hostile or buggy issuer could."""
    return f"{body}.{b64url(key.sign(body.encode()))}"


def code(kind="M", subject="M0002", issued=NOW, expires=NOW + 60, nonce="3cb926fd282aeadb"):
    return mint(f"LK1.{kind}.{subject}.{issued}.{expires}.{nonce}")


def reason(text: str, now: int = NOW, **kw) -> str:
    with pytest.raises(CodeRejected) as info:
        verify_code(text, PUB, now, **kw)
    assert isinstance(info.value, KioskError)
    assert str(info.value)  # a message someone can act on
    return info.value.reason


# ---- valid -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("letter", "kind"), [("M", CodeKind.MEMBER), ("S", CodeKind.STAFF), ("T", CodeKind.TECHNICIAN)]
)
def test_a_valid_code_verifies_with_its_fields(letter, kind):
    got = verify_code(code(kind=letter), PUB, NOW + 10)
    assert got == VerifiedCode(kind, "M0002", NOW, NOW + 60, "3cb926fd282aeadb")


def test_whitespace_a_scanner_adds_around_the_code_is_ignored():
    assert verify_code(f" {code()}\r\n", PUB, NOW).subject == "M0002"


def test_load_public_key_takes_base64_or_raw_bytes():
    raw = PUB.public_bytes(Encoding.Raw, PublicFormat.Raw)
    for key in (raw, base64.b64encode(raw).decode(), base64.b64encode(raw).decode() + "\n"):
        assert verify_code(code(), load_public_key(key), NOW).nonce == "3cb926fd282aeadb"


@pytest.mark.parametrize("bad", ["", "not base64!", base64.b64encode(b"short").decode(), b"x" * 31])
def test_a_bad_public_key_is_a_config_error_saying_re_enroll(bad):
    with pytest.raises(ConfigError, match="re-enroll"):
        load_public_key(bad)


# ---- several keys (a store key rotation) -------------------------------------------------------


def test_a_code_of_either_trusted_key_verifies_and_of_another_key_is_forged():
    other = OTHER_KEY.public_key()
    assert verify_code(code(), [other, PUB], NOW).subject == "M0002"  # the previous key
    assert verify_code(code(), (PUB,), NOW).subject == "M0002"
    with pytest.raises(CodeRejected) as info:
        verify_code(code(), [other], NOW)
    assert info.value.reason == "forged"


def test_the_key_file_holds_one_key_a_line_current_first():
    lines = f"{server_codes.public_key_b64(OTHER_KEY)}\n{server_codes.public_key_b64(KEY)}\n"
    keys = load_public_keys(lines)
    assert [k.public_bytes_raw() for k in keys] == [
        OTHER_KEY.public_key().public_bytes_raw(),
        PUB.public_bytes_raw(),
    ]
    assert len(load_public_keys(server_codes.public_key_b64(KEY))) == 1  # as enrollment wrote it


@pytest.mark.parametrize("text", ["", "\n\n", (server_codes.public_key_b64(KEY) + "\n") * 5])
def test_a_key_file_without_1_to_4_keys_is_a_config_error(text):
    with pytest.raises(ConfigError, match="re-enroll"):
        load_public_keys(text)


def test_a_verifier_follows_the_trusted_keys_when_they_are_replaced():
    trusted = TrustedKeys([PUB])
    verifier = CodeVerifier(trusted_keys(trusted), ReplayGuard(MemoryNonceStore()))
    assert verifier.accept(code(nonce="0000000000000001"), NOW)
    assert trusted.replace([OTHER_KEY.public_key()])
    with pytest.raises(CodeRejected) as info:
        verifier.accept(code(nonce="0000000000000002"), NOW)
    assert info.value.reason == "forged"
    assert not trusted.replace([OTHER_KEY.public_key()])  # the same keys: no change
    with pytest.raises(ConfigError):
        trusted.replace([])


# ---- time ------------------------------------------------------------------------------------


def test_expired_at_and_after_expiry_with_an_actionable_message():
    assert reason(code(), now=NOW + 60) == "expired"
    with pytest.raises(CodeRejected, match="refresh it in the app"):
        verify_code(code(), PUB, NOW + 3600)
    assert verify_code(code(), PUB, NOW + 59).subject == "M0002"


def test_issued_in_the_future_is_allowed_within_the_clock_skew_only():
    assert verify_code(code(), PUB, NOW - 30).subject == "M0002"
    assert reason(code(), now=NOW - 31) == "not_yet_valid"
    with pytest.raises(CodeRejected, match="check the kiosk clock"):
        verify_code(code(), PUB, NOW - 31)
    assert verify_code(code(), PUB, NOW - 31, clock_skew_s=60).subject == "M0002"


@pytest.mark.parametrize(
    ("issued", "expires"), [(NOW, NOW), (NOW, NOW - 1), (NOW, NOW + 3601), (0, NOW + 30)]
)
def test_an_implausible_validity_window_is_malformed_even_when_signed(issued, expires):
    assert reason(code(issued=issued, expires=expires)) == "malformed"


def test_max_window_s_widens_or_narrows_the_plausible_window():
    two_hours = code(expires=NOW + 7200)
    assert reason(two_hours) == "malformed"  # the default: an hour
    assert verify_code(two_hours, PUB, NOW, max_window_s=7200).expires == NOW + 7200
    assert reason(two_hours, max_window_s=7199) == "malformed"
    assert reason(code(), max_window_s=59) == "malformed"
    badge = code(kind="S", subject="S0001", expires=NOW + 1098 * 86400)  # a three-year badge
    got = verify_code(
        badge, PUB, NOW + 1000 * 86400, kinds=frozenset({CodeKind.STAFF}), max_window_s=1098 * 86400
    )
    assert got.subject == "S0001"
    assert reason(badge, now=NOW + 1098 * 86400, max_window_s=1098 * 86400) == "expired"


def test_a_refusal_after_the_signature_verified_carries_the_code():
    with pytest.raises(CodeRejected) as expired:
        verify_code(code(kind="T", subject="T0001"), PUB, NOW + 60)
    assert expired.value.code is not None
    assert (expired.value.code.kind, expired.value.code.subject) == (CodeKind.TECHNICIAN, "T0001")
    with pytest.raises(CodeRejected) as wrong:
        verify_code(code(), PUB, NOW, kinds=frozenset({CodeKind.STAFF}))
    assert wrong.value.reason == "wrong_kind" and wrong.value.code == verify_code(code(), PUB, NOW)
    forged = mint("LK1.M.M0002.1795430568.1795430628.3cb926fd282aeadb", OTHER_KEY)
    for text in (forged, "hello"):  # nothing of a forged or malformed code can be trusted
        with pytest.raises(CodeRejected) as info:
            verify_code(text, PUB, NOW)
        assert info.value.code is None


# ---- forged, malformed, wrong kind ---------------------------------------------------------------


def test_signed_by_another_key_is_forged():
    assert reason(mint("LK1.M.M0002.1795430568.1795430628.3cb926fd282aeadb", OTHER_KEY)) == "forged"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c.replace(".M0002.", ".M0003."),
        lambda c: c.replace(".M.", ".S."),
        lambda c: c.replace(f".{NOW + 60}.", f".{NOW + 90}."),
        lambda c: c.replace("3cb926fd282aeadb", "3cb926fd282aeadc"),
    ],
)
def test_any_changed_field_is_forged(tamper):
    tampered = tamper(code())
    assert tampered != code()
    assert reason(tampered) == "forged"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "LK2.M.M0002.1.2.3cb926fd282aeadb.sig",
        code().replace("LK1.M.", "LK1.X."),
        code().rsplit(".", 1)[0],  # no signature
        code() + ".extra",
        code()[:-1],  # signature one character short
        code()[:-1] + "!",  # not base64url
        code().replace("3cb926fd282aeadb", "3CB926FD282AEADB"),
        code().replace("M0002", "M0002/../x"),
        code().replace("M0002", "x" * 33),
        "LK1.M.M0002.1795430568.1795430628.3cb926fd282aeadb." + "A" * 300,
        code().replace("M0002", "M０００2"),  # not ASCII
        None,
        12345,
    ],
)
def test_malformed_codes(text):
    assert reason(text) == "malformed"


def test_a_non_canonical_signature_spelling_is_malformed():
    good = code()
    last = good[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # the last of 86 characters carries 2 bits of signature and 4 spare bits that must be zero
    twin = alphabet[alphabet.index(last) | 1] if alphabet.index(last) % 16 == 0 else None
    assert twin is not None and twin != last
    assert reason(good[:-1] + twin) == "malformed"


def test_a_kind_that_is_not_wanted_is_refused_with_a_hint():
    assert reason(code(kind="S"), kinds=frozenset({CodeKind.MEMBER})) == "wrong_kind"
    with pytest.raises(CodeRejected, match="show a member code"):
        verify_code(code(kind="S"), PUB, NOW, kinds=frozenset({CodeKind.MEMBER}))
    staff = frozenset({CodeKind.STAFF, CodeKind.TECHNICIAN})
    assert verify_code(code(kind="T"), PUB, NOW, kinds=staff).kind is CodeKind.TECHNICIAN


# ---- replay ----------------------------------------------------------------------------------


def test_a_nonce_is_accepted_once_then_replayed():
    verifier = CodeVerifier(PUB, ReplayGuard(MemoryNonceStore()))
    assert verifier.accept(code(), NOW).subject == "M0002"
    with pytest.raises(CodeRejected, match="already used") as info:
        verifier.accept(code(), NOW + 1)
    assert info.value.reason == "replayed"
    assert verifier.accept(code(nonce="0" * 16), NOW + 1).nonce == "0" * 16


def test_a_rejected_code_does_not_consume_its_nonce():
    store = MemoryNonceStore()
    verifier = CodeVerifier(PUB, ReplayGuard(store))
    with pytest.raises(CodeRejected):
        verifier.accept(code(kind="S"), NOW, kinds=frozenset({CodeKind.MEMBER}))
    assert len(store) == 0
    assert verifier.accept(code(kind="S"), NOW).kind is CodeKind.STAFF


def test_nonces_are_kept_past_expiry_by_the_grace_then_forgotten():
    store = MemoryNonceStore()
    guard = ReplayGuard(store, grace_s=60)
    first = verify_code(code(), PUB, NOW)
    guard.check(first, NOW)
    # The kiosk clock stepped back: the code looks valid again, and must still be refused.
    with pytest.raises(CodeRejected):
        guard.check(first, NOW + 100)
    assert store.seen(first.nonce)
    guard.check(verify_code(code(nonce="1" * 16), PUB, NOW), NOW + 121)
    assert not store.seen(first.nonce)  # forgotten at expires + grace
    assert len(store) == 1


# ---- fuzz ------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_only_ever_raises_code_rejected(text):
    try:
        verify_code(text, PUB, NOW)
    except CodeRejected as exc:
        assert exc.reason in {"malformed", "forged", "expired", "not_yet_valid"}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(list("LK1.MST-_0123456789abcdefABCDEF")), max_size=200).map("".join)
)
def test_code_like_text_only_ever_raises_code_rejected(text):
    with pytest.raises(CodeRejected):
        verify_code(text, PUB, NOW)


# ---- cross-check with the store server's issuer and verifier -----------------------------------


def server_reason(text: str, now: int) -> str | None:
    try:
        server_codes.verify(PUB, text, now)
    except server_codes.CodeError as exc:
        return exc.reason
    return None


def kiosk_reason(text: str, now: int) -> str | None:
    try:
        verify_code(text, PUB, now)
    except CodeRejected as exc:
        return exc.reason
    return None


@pytest.mark.parametrize("kind", list(server_codes.CodeKind))
def test_codes_issued_by_the_store_server_verify_here(kind):
    text = server_codes.issue(KEY, kind, "M0004", NOW)
    got = verify_code(text, PUB, NOW + 1)
    want, _, _ = server_codes.parse(text)
    assert (got.kind.value, got.subject, got.issued, got.expires, got.nonce) == (
        want.kind.value,
        want.subject,
        want.issued,
        want.expires,
        want.nonce,
    )


def test_the_server_public_key_as_enrollment_sends_it_loads_here():
    text = server_codes.issue(KEY, server_codes.CodeKind.MEMBER, "M0001", NOW)
    pub = load_public_key(server_codes.public_key_b64(KEY))
    assert verify_code(text, pub, NOW).subject == "M0001"


def _tampered() -> list[tuple[str, str, int]]:
    good = server_codes.issue(KEY, server_codes.CodeKind.MEMBER, "M0002", NOW, nonce="a" * 16)
    head, sig = good.rsplit(".", 1)
    flipped = bytearray(base64.urlsafe_b64decode(sig + "=="))
    flipped[0] ^= 1
    return [
        ("expired", good, NOW + 60),
        ("future", good, NOW - 31),
        ("subject", good.replace(".M0002.", ".M0001."), NOW),
        ("kind", good.replace("LK1.M.", "LK1.T."), NOW),
        ("signature", f"{head}.{b64url(bytes(flipped))}", NOW),
        (
            "other key",
            server_codes.issue(OTHER_KEY, server_codes.CodeKind.MEMBER, "M0002", NOW),
            NOW,
        ),
        ("truncated", good[:-5], NOW),
        ("no prefix", good[4:], NOW),
        ("too long", good + "A" * 200, NOW),
        (
            "long window",
            server_codes.issue(KEY, server_codes.CodeKind.MEMBER, "M2", NOW, 7200),
            NOW,
        ),
    ]


@pytest.mark.parametrize(("name", "text", "now"), _tampered(), ids=[t[0] for t in _tampered()])
def test_tampered_codes_fail_the_same_way_here_and_on_the_server(name, text, now):
    assert server_reason(text, now) is not None
    assert kiosk_reason(text, now) == server_reason(text, now)


_MUTATION_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(list(server_codes.CodeKind)),
    validity=st.integers(1, 4000),
    now_offset=st.integers(-100, 4100),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["replace", "delete", "insert"]),
            st.integers(0, 200),
            st.sampled_from(list(_MUTATION_ALPHABET)),
        ),
        max_size=3,
    ),
)
def test_kiosk_and_server_agree_on_mutated_codes(kind, validity, now_offset, edits):
    text = server_codes.issue(KEY, kind, "M0002", NOW, validity)
    for op, pos, char in edits:
        pos %= len(text) + 1
        if op == "replace" and pos < len(text):
            text = text[:pos] + char + text[pos + 1 :]
        elif op == "delete":
            text = text[:pos] + text[pos + 1 :]
        else:
            text = text[:pos] + char + text[pos:]
    now = NOW + now_offset
    # the server's parser is as strict as the kiosk's: both give the same answer for every text
    assert kiosk_reason(text, now) == server_reason(text, now)
