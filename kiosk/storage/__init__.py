"""Durable local storage of the kiosk: the crash-safe journal (see docs/journal.md)."""

from kiosk.storage.journal import Journal, JournalStats
from kiosk.storage.journal_log import JournalCorrupt

__all__ = ["Journal", "JournalCorrupt", "JournalStats"]
