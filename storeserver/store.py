"""The store: one object wiring the database, clock, ledger, payments and holds together."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from .clock import Clock, SystemClock
from .db import Database
from .holds import DEFAULT_HOLD_EXPIRY_S, Redemptions
from .ledger import Ledger
from .notify import LogNotifier, Notifier
from .payments import DEFAULT_PAYMENT_EXPIRY_S, PaymentProvider, Payments, SimulatedPaymentProvider
from .pictures import PictureFolder
from .ratelimit import DEFAULT_RATES, Rate, RateLimiter

log = logging.getLogger(__name__)

DEFAULT_TIMEZONE = "Asia/Shanghai"


@dataclass
class StoreSettings:
    timezone: str = DEFAULT_TIMEZONE
    hold_expiry_s: int = DEFAULT_HOLD_EXPIRY_S
    payment_expiry_s: int = DEFAULT_PAYMENT_EXPIRY_S
    lot_validity_days: int = 365
    pictures_dir: Path | None = None  # item pictures; None: pictures/ beside the database
    # per token and route group (resolve, holds, spins, pin): storeserver/ratelimit.py
    rate_limits: dict[str, Rate] = field(default_factory=lambda: dict(DEFAULT_RATES))


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
        # real elapsed time, not the store's (possibly manual) clock: a rate is about requests
        self.rate_limiter = RateLimiter(self.settings.rate_limits, time.monotonic)
        self.signing_key = self._signing_key()
        self.pictures = PictureFolder(
            self.settings.pictures_dir or Path(db_path).resolve().parent / "pictures"
        )

    @property
    def simulated_payments(self) -> bool:
        return isinstance(self.provider, SimulatedPaymentProvider)

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
