"""The journal's tables, named in one place (docs/journal.md). A table is created by its first
``put``; the module that writes it is named beside it. ``kiosk logs`` and ``kiosk doctor`` read
them with kiosk/storage/journal_reader.py."""

from __future__ import annotations

TXN = "txn"  # transactions by txn_id (services/txn_steps.py)
COMPARTMENT_FLAGS = "compartment_flags"  # needs-check flags by compartment number (txn_steps)
OFFLINE_SPENDS = "offline_spends"  # an offline redemption's counted spend by txn_id (txn_steps)
RECEIPT_QUEUE = "receipt_queue"  # receipts waiting to print (services/receipt_queue.py)
OUTBOX = "outbox"  # events owed to the store server by event_id (storage/outbox.py)
SYNC_ALERTS = "sync_alerts"  # events the server refused, by event_id (storage/outbox.py)
MEMBER_CACHE = "member_cache"  # member views for offline use (services/identify.py)
NONCES = "nonces"  # member-code nonces seen (storage/nonces.py, services/identify.py)
TECHNICIAN_NONCES = "technician_nonces"  # technician-code nonces (services/technician_codes.py)
STAFF_PINS = "staff_pins"  # offline PIN checks by staff id (services/staff_auth.py)
STAFF_FAILURES = "staff_failures"  # wrong PINs typed offline by staff id (staff_auth)
STAFF_REVOKED = "staff_revoked"  # the server's revoked staff list (staff_auth)
RESTOCK = "restock"  # restock sessions (services/restock.py)
RESTOCK_COUNTS = "restock_counts"  # restock counts not yet sent (services/restock.py)

ALL = (
    TXN, COMPARTMENT_FLAGS, OFFLINE_SPENDS, RECEIPT_QUEUE, OUTBOX, SYNC_ALERTS, MEMBER_CACHE,
    NONCES, TECHNICIAN_NONCES, STAFF_PINS, STAFF_FAILURES, STAFF_REVOKED, RESTOCK, RESTOCK_COUNTS,
)  # fmt: skip
