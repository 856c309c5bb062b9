"""Durable local storage of the kiosk: the crash-safe journal (see docs/journal.md), its one
reader (journal_reader.py) and the names of its tables (tables.py)."""

from tinydb import Query  # the journal's query language: journal.find(table, Query().x == y)

from kiosk.storage.journal import Journal, JournalStats
from kiosk.storage.journal_log import JournalCorrupt

__all__ = ["Journal", "JournalCorrupt", "JournalStats", "Query"]
