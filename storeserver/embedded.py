"""The store server's public entry points for code outside it: what a store's back office issues
(enrollment, member and technician codes, account tokens), and a demo store server run in
this process (``EmbeddedStoreServer``).

The ``storeserver`` commands that issue codes and tokens (enroll-code, member-code,
technician-code, token) call the functions below; the kiosk's demo (kiosk/demo/network.py)
uses this module and no other module of the store server (tests/kiosk/test_layer_rules.py
holds that), so the demo goes through the same doors a store does and the server's modules
and tables stay free to change behind them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from . import accounts, demo, kiosks, members, technicians
from .errors import DatabaseBehind
from .payments import SimulatedPaymentProvider
from .store import Store
from .technicians import TechnicianCode

log = logging.getLogger(__name__)

DEMO_MANAGER = "demo-manager"  # the demo store manager's account (banner's curl examples)


def enrollment_code(store: Store, kiosk_id: str, *, replace: bool | None = False) -> str:
    """A one-time code that enrolls kiosk ``kiosk_id``; ``replace`` True for a kiosk already
    enrolled (its token stops working when the code is used), None: whichever fits."""
    with store.db.transaction() as conn:
        if replace is None:
            replace = kiosks.is_enrolled(conn, kiosk_id)
        return kiosks.new_enrollment_code(conn, store.clock, kiosk_id, replace=replace)


def member_code(store: Store, member_id: str) -> dict:
    """A fresh member code as the member's app shows it: ``code`` and ``expires_at``."""
    with store.db.transaction() as conn:
        return members.issue_code(store.ledger, conn, store.signing_key, member_id)


def technician_code(store: Store, kiosk_id: str, minutes: int, by: str) -> TechnicianCode:
    """A technician code for one kiosk, recorded with who asked (``by``)."""
    with store.db.transaction() as conn:
        return technicians.issue_technician_code(
            conn, store.clock, store.signing_key, kiosk_id, minutes, by
        )


def account_token(store: Store, account_id: str, days: int) -> tuple[str, str]:
    """A new token for an existing account: (token id, token); the token is shown once."""
    with store.db.transaction() as conn:
        return accounts.issue_token(conn, store.clock, account_id, days)


def _open_demo_store(path: Path) -> Store:
    """The demo's store; a kept demo folder (--state-dir) from an older release is migrated
    first (with its backup beside it), as a technician would run ``storeserver migrate``."""
    try:
        return Store(path, provider=SimulatedPaymentProvider())
    except DatabaseBehind:
        from .migrations.runner import migrate  # Alembic is imported only to migrate

        migrate(str(path), say=log.warning)
        return Store(path, provider=SimulatedPaymentProvider())


class EmbeddedStoreServer:
    """A store server with the demo data (storeserver/demo.py) on a thread at 127.0.0.1 (port 0:
    any free port), its database in ``folder``. Payments are SIMULATED: anyone can mark one
    paid, as ``serve --demo``; it is for the demo and tests, never a store."""

    def __init__(self, folder: Path, kiosk_ids: list[str], port: int = 0) -> None:
        from .runner import ServerThread  # uvicorn is imported only to serve

        folder.mkdir(parents=True, exist_ok=True)
        self._store = _open_demo_store(folder / "store.db")
        log.warning("demo store server: simulated payments (anyone can mark a payment paid)")
        self.members = demo.seed(self._store, kiosk_ids)  # id, name, tier, balance of each
        try:
            self._thread = ServerThread(self._store, "127.0.0.1", port).start()
        except BaseException:
            self._store.close()
            raise
        self.url, self.port = self._thread.url, self._thread.port

    def enrollment_code(self, kiosk_id: str) -> str:
        """A code for ``kiosk_id`` (a replacement once it is enrolled)."""
        return enrollment_code(self._store, kiosk_id, replace=None)

    def member_code(self, member_id: str) -> str:
        return member_code(self._store, member_id)["code"]

    def technician_code(self, kiosk_id: str, minutes: int = 15, by: str = "demo") -> str:
        return technician_code(self._store, kiosk_id, minutes, by).code

    def staff_badge(self) -> tuple[str, str]:
        """The first demo staff member's badge code (valid a day) and PIN."""
        badge = demo.staff_badges(self._store, days=1)[0]
        return badge["code"], badge["pin"]

    def manager_token(self) -> str:
        """A token of the demo store's manager account (made on first use), valid a day."""
        with self._store.db.transaction() as conn:
            if not conn.execute("SELECT 1 FROM accounts WHERE id = ?", (DEMO_MANAGER,)).fetchone():
                accounts.add_account(conn, self._store.clock, DEMO_MANAGER, "manager")
        return account_token(self._store, DEMO_MANAGER, days=1)[1]

    def pay(self, payment_id: str) -> None:
        """The member's phone pays payment ``payment_id`` (simulated provider)."""
        with self._store.db.transaction() as conn:
            self._store.payments.mark_paid(conn, payment_id)

    @contextlib.contextmanager
    def payments_expiring_after(self, seconds: int) -> Iterator[None]:
        """Payments started meanwhile expire after ``seconds`` (the tour's unpaid payment)."""
        payments = self._store.payments
        payments.expiry_s, before = seconds, payments.expiry_s
        try:
            yield
        finally:
            payments.expiry_s = before

    def stop(self) -> None:
        self._thread.stop()
        self._store.close()
