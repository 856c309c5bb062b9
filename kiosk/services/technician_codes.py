"""The technician code that opens the diagnostics (kind T, docs/member-codes.md).

Checked offline with the store's public key; its subject must be this kiosk's id (the store
server issues it for one kiosk: ``storeserver technician-code --kiosk ID``) and its nonce must
be new here: technician nonces are journalled like member-code nonces, so a code opens the
screen once, also across restarts.
"""

from __future__ import annotations

import logging

from kiosk.domain.member_codes import (
    CodeKind,
    CodeRejected,
    MemoryNonceStore,
    ReplayGuard,
    VerifiedCode,
    load_public_keys,
)
from kiosk.domain.member_codes import verify_code as _verify_code
from kiosk.errors import ConfigError
from kiosk.storage import tables
from kiosk.storage.journal import Journal
from kiosk.storage.nonces import JournalNonceStore

log = logging.getLogger(__name__)

TECHNICIAN_NONCES = tables.TECHNICIAN_NONCES  # the journal table of technician codes seen here


def technician_guard(journal: Journal) -> ReplayGuard:
    """Technician codes are used once per kiosk: their nonces are journalled, so a replay is
    refused across restarts. A journal in safe mode is read-only: then they are kept in
    memory (a technician must still get in, and safe mode is when one is needed)."""
    if journal.safe_mode:
        log.warning("journal in safe mode: technician code nonces are kept in memory only")
        return ReplayGuard(MemoryNonceStore())
    return ReplayGuard(JournalNonceStore(journal, table=TECHNICIAN_NONCES))


def verify_technician(
    code: str, key_file, now_s: int, kiosk_id: str, guard: ReplayGuard | None = None
) -> VerifiedCode:
    """A technician code (kind T) checked with the store's public keys (the file as the sync
    worker last wrote it: current and previous during a rotation), made for ``kiosk_id``
    and, given a ``guard``, not seen before (its nonce is then kept): CodeRejected, or
    ConfigError when the kiosk has no key (not enrolled: use ``kiosk selftest`` on the device)."""
    try:
        key = load_public_keys(key_file.read_text())
    except OSError as exc:
        raise ConfigError(f"no store key at {key_file} ({exc}): enroll the kiosk") from exc
    who = _verify_code(code, key, now_s, kinds=frozenset({CodeKind.TECHNICIAN}))
    make_one = f"make one with 'storeserver technician-code --kiosk {kiosk_id}'"
    if who.subject != kiosk_id:
        raise CodeRejected(
            "wrong_kiosk",
            f"this technician code is for kiosk {who.subject}, not this one ({kiosk_id}): "
            + make_one,
            who,
        )
    if guard is not None:
        try:
            guard.check(who, now_s)
        except CodeRejected as exc:
            if exc.reason != "replayed":
                raise
            raise CodeRejected(
                "replayed", f"this technician code was used here before: {make_one}", who
            ) from None
    return who
