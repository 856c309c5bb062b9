"""JournalNonceStore: the NonceStore protocol on the journal, durable across reopening."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.domain.member_codes import CodeKind, CodeRejected, ReplayGuard, VerifiedCode
from kiosk.storage import Journal
from kiosk.storage.nonces import JournalNonceStore

NONCE = "0123456789abcdef"


def test_remember_then_seen(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        store = JournalNonceStore(journal)
        assert not store.seen(NONCE)
        store.remember(NONCE, 1000)
        assert store.seen(NONCE) and not store.seen("fedcba9876543210")
        assert journal.get("nonces", NONCE) == {"expires_s": 1000}


def test_remember_never_shortens(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        store = JournalNonceStore(journal, table="codes")
        store.remember(NONCE, 1000)
        store.remember(NONCE, 500)
        assert journal.get("codes", NONCE) == {"expires_s": 1000}


def test_survives_reopening(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        JournalNonceStore(journal).remember(NONCE, 1000)
    with Journal.open(tmp_path) as journal:
        assert JournalNonceStore(journal).seen(NONCE)


def test_forget_expired(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        store = JournalNonceStore(journal)
        store.remember("a" * 16, 100)
        store.remember("b" * 16, 200)
        store.forget_expired(100)  # at or before now: gone
        assert not store.seen("a" * 16) and store.seen("b" * 16)
        assert len(store) == 1
    with Journal.open(tmp_path) as journal:  # the delete is durable too
        assert not JournalNonceStore(journal).seen("a" * 16)


def test_replay_guard_rejects_replay_after_reopen(tmp_path: Path) -> None:
    code = VerifiedCode(CodeKind.MEMBER, "m1", issued=1000, expires=1060, nonce=NONCE)
    with Journal.open(tmp_path) as journal:
        ReplayGuard(JournalNonceStore(journal)).check(code, now_s=1010)
    with Journal.open(tmp_path) as journal:
        guard = ReplayGuard(JournalNonceStore(journal))
        with pytest.raises(CodeRejected) as caught:
            guard.check(code, now_s=1020)
        assert caught.value.reason == "replayed"
