"""The store: one object wiring the database, clock, ledger, payments and holds together."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from .clock import Clock, SystemClock
from .db import Database
from .holds import DEFAULT_HOLD_EXPIRY_S, Redemptions
from .ledger import Ledger
from .member_sessions import DEFAULT_SESSION_S
from .notify import LogNotifier, Notifier
from .offline import OfflineRules
from .payments import DEFAULT_PAYMENT_EXPIRY_S, PaymentProvider, Payments, SimulatedPaymentProvider
from .pictures import PictureFolder

log = logging.getLogger(__name__)

DEFAULT_TIMEZONE = "Asia/Shanghai"


@dataclass
class StoreSettings:
    timezone: str = DEFAULT_TIMEZONE
    hold_expiry_s: int = DEFAULT_HOLD_EXPIRY_S
    payment_expiry_s: int = DEFAULT_PAYMENT_EXPIRY_S
    lot_validity_days: int = 365
    pictures_dir: Path | None = None  # item pictures; None: pictures/ beside the database
    # how long a resolved member code lets its kiosk hold and spin for that member
    member_session_s: int = DEFAULT_SESSION_S
    # offline floor limits, enforced on upload and sent to kiosks with the catalog
    offline_member_daily_points: int = 500
    offline_kiosk_daily_points: int = 3000
    offline_max_hours: int = 8

    def offline_limits(self) -> dict[str, int]:
        """The offline caps as kiosks receive them (the catalog's ``offline``)."""
        return {
            "per_member_daily_points": self.offline_member_daily_points,
            "per_kiosk_daily_points": self.offline_kiosk_daily_points,
            "max_offline_hours": self.offline_max_hours,
        }


class Store:
    """Everything a request handler needs; safe to share between the server's threads."""

    def __init__(
        self,
        db_path: str | Path,
        *,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        provider: PaymentProvider | None = None,
        settings: StoreSettings | None = None,
    ) -> None:
        self.settings = settings or StoreSettings()
        try:
            tz = ZoneInfo(self.settings.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {self.settings.timezone!r}: use an IANA name such as Asia/Shanghai"
            ) from exc
        self.db = Database(db_path)
        self.clock = clock or SystemClock()
        self.notifier = notifier or LogNotifier()
        self.provider = provider or SimulatedPaymentProvider()
        self.ledger = Ledger(
            self.db, self.clock, self.notifier, tz, self.settings.lot_validity_days
        )
        self.payments = Payments(self.db, self.provider, self.clock, self.settings.payment_expiry_s)
        self.redemptions = Redemptions(
            self.db, self.clock, self.ledger, self.payments, self.settings.hold_expiry_s
        )
        self.signing_key = self._signing_key()
        self.pictures = PictureFolder(
            self.settings.pictures_dir or Path(db_path).resolve().parent / "pictures"
        )

    @property
    def simulated_payments(self) -> bool:
        return isinstance(self.provider, SimulatedPaymentProvider)

    def offline_rules(self) -> OfflineRules:
        """What an uploaded offline redemption is checked against (storeserver/offline.py)."""
        s = self.settings
        return OfflineRules(
            self.signing_key.public_key(),
            s.offline_member_daily_points,
            s.offline_kiosk_daily_points,
            s.offline_max_hours,
        )

    def today(self) -> dt.date:
        return self.ledger.today()

    def _signing_key(self) -> Ed25519PrivateKey:
        """The store's Ed25519 key for member codes, made once and kept in the database."""
        stored = self.db.get_meta("signing_key")
        if stored is not None:
            return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(stored))
        key = Ed25519PrivateKey.generate()
        raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('signing_key', ?)", (raw.hex(),)
            )
        # another process may have won the race: read back what is stored
        return Ed25519PrivateKey.from_private_bytes(
            bytes.fromhex(self.db.get_meta("signing_key") or "")
        )

    def close(self) -> None:
        self.db.close()
