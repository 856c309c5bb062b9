"""Seen member-code nonces kept in the journal, so a replay is refused across restarts."""

from __future__ import annotations

from tinydb import Query

from kiosk.storage import tables
from kiosk.storage.journal import Journal

__all__ = ["JournalNonceStore"]


class JournalNonceStore:
    """A :class:`kiosk.domain.member_codes.NonceStore` on the :class:`Journal`.

    One record per nonce, ``{"expires_s": int}`` under key nonce in ``table``; ``remember``
    returns once it is durable. In safe mode (read-only journal) ``remember`` raises
    JournalError, so no code is accepted without its nonce being kept.
    """

    def __init__(self, journal: Journal, table: str = tables.NONCES) -> None:
        self._journal = journal
        self._table = table

    def seen(self, nonce: str) -> bool:
        return self._journal.get(self._table, nonce) is not None

    def remember(self, nonce: str, expires_s: int) -> None:
        old = self._journal.get(self._table, nonce)
        if old is not None:
            expires_s = max(expires_s, old["expires_s"])  # never shorten a nonce's life
        self._journal.put(self._table, nonce, {"expires_s": expires_s})

    def forget_expired(self, now_s: int) -> None:
        if self._journal.safe_mode:
            return  # read-only: nothing can be deleted (and the table is empty anyway)
        for nonce in self._journal.find(self._table, Query().expires_s <= now_s):
            self._journal.delete(self._table, nonce)

    def __len__(self) -> int:
        return len(self._journal.all(self._table))
