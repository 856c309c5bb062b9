"""The durable nonce cache: same contract as the in-memory one, survives a restart, never lost."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.domain.member_codes import (
    CodeRejected,
    CodeVerifier,
    MemoryNonceStore,
    ReplayGuard,
)
from kiosk.errors import JournalError
from kiosk.sync.nonce_file import FileNonceStore
from storeserver import codes as server_codes

NOW = 1_795_430_568


@pytest.fixture(params=["memory", "file"])
def store(request, tmp_path):
    """The same contract runs against both NonceStore implementations."""
    if request.param == "memory":
        return MemoryNonceStore()
    return FileNonceStore(tmp_path / "state" / "nonces.json")


def test_contract_remember_seen_forget(store):
    assert not store.seen("a" * 16)
    store.remember("a" * 16, NOW + 60)
    store.remember("b" * 16, NOW + 120)
    assert store.seen("a" * 16) and store.seen("b" * 16)
    store.forget_expired(NOW + 59)
    assert store.seen("a" * 16)
    store.forget_expired(NOW + 60)
    assert not store.seen("a" * 16) and store.seen("b" * 16)
    assert len(store) == 1


def test_contract_remember_never_shortens_a_nonce_life(store):
    store.remember("a" * 16, NOW + 120)
    store.remember("a" * 16, NOW + 10)
    store.forget_expired(NOW + 60)
    assert store.seen("a" * 16)


def test_a_replay_is_refused_after_a_restart(tmp_path):
    key = Ed25519PrivateKey.generate()
    text = server_codes.issue(key, server_codes.CodeKind.MEMBER, "M0002", NOW)
    path = tmp_path / "nonces.json"
    CodeVerifier(key.public_key(), ReplayGuard(FileNonceStore(path))).accept(text, NOW)
    restarted = CodeVerifier(key.public_key(), ReplayGuard(FileNonceStore(path)))
    with pytest.raises(CodeRejected) as info:
        restarted.accept(text, NOW + 5)
    assert info.value.reason == "replayed"


def test_the_file_is_written_before_remember_returns_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "nonces.json"
    store = FileNonceStore(path)
    store.remember("c" * 16, NOW + 60)
    assert json.loads(path.read_text()) == {"version": 1, "nonces": {"c" * 16: NOW + 60}}
    store.forget_expired(NOW + 61)
    assert json.loads(path.read_text())["nonces"] == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nonces.json"]


@pytest.mark.parametrize(
    "content", [b"", b"{not json", b"[]", b'{"version": 9, "nonces": {}}', b"\xff\xfe"]
)
def test_a_corrupt_file_is_moved_aside_never_deleted(tmp_path, content):
    path = tmp_path / "nonces.json"
    path.write_bytes(content)
    store = FileNonceStore(path)
    assert len(store) == 0
    assert store.recovered_from is not None
    assert store.recovered_from.read_bytes() == content
    store.remember("d" * 16, NOW + 60)
    assert FileNonceStore(path).seen("d" * 16)


def test_a_failed_write_is_a_journal_error_and_keeps_memory_unchanged(tmp_path):
    folder = tmp_path / "state"
    store = FileNonceStore(folder / "nonces.json")
    folder.write_text("a file where the state folder should be")  # fails even for root
    with pytest.raises(JournalError, match="cannot write the member-code nonce cache"):
        store.remember("e" * 16, NOW + 60)
    assert not store.seen("e" * 16)


def test_an_unreadable_file_is_a_journal_error(tmp_path):
    (tmp_path / "state").write_text("not a folder")
    with pytest.raises(JournalError, match="cannot read the member-code nonce cache"):
        FileNonceStore(tmp_path / "state" / "nonces.json")
