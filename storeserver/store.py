"""The store: one object wiring the database, clock, ledger, payments and holds together."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import keys
from .clock import Clock, SystemClock
from .db import Database
from .holds import DEFAULT_HOLD_EXPIRY_S, Redemptions
from .ledger import Ledger
from .member_sessions import DEFAULT_SESSION_S
from .notify import LogNotifier, Notifier
from .offline import OfflineRules
from .payments import DEFAULT_PAYMENT_EXPIRY_S, PaymentProvider, Payments, SimulatedPaymentProvider
from .pictures import PictureFolder
from .ratelimit import DEFAULT_RATES, Rate, RateLimiter
from .till import TillLimits

log = logging.getLogger(__name__)

DEFAULT_TIMEZONE = "Asia/Shanghai"


@dataclass
class StoreSettings:
    timezone: str = DEFAULT_TIMEZONE
    hold_expiry_s: int = DEFAULT_HOLD_EXPIRY_S
    payment_expiry_s: int = DEFAULT_PAYMENT_EXPIRY_S
    lot_validity_days: int = 365
    pictures_dir: Path | None = None  # item pictures; None: pictures/ beside the database
    till_limits: TillLimits = field(default_factory=TillLimits)
    # what phones reach the server by (pay URLs); None: the listening URL, simulated payments only
    public_url: str | None = None
    # the Ed25519 key of codes and badges; None: <db stem>.keys/signing.pem beside the database
    signing_key_file: Path | None = None
    # per token and route group (resolve, holds, spins, pin): storeserver/ratelimit.py
    rate_limits: dict[str, Rate] = field(default_factory=lambda: dict(DEFAULT_RATES))
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
    """Everything a request handler needs; safe to share between the server's threads.

    ``provider`` None is a store without points + cash (a cash part is refused); the
    simulated provider is never implied: the demo and tests pass it.
    """

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
        self.provider = provider
        self.listening_url: str | None = None  # set by the server once it listens
        self.ledger = Ledger(
            self.db, self.clock, self.notifier, tz, self.settings.lot_validity_days
        )
        self.payments = Payments(self.db, self.provider, self.clock, self.settings.payment_expiry_s)
        self.redemptions = Redemptions(
            self.db, self.clock, self.ledger, self.payments, self.settings.hold_expiry_s
        )
        key_file = Path(self.settings.signing_key_file or keys.default_key_file(db_path))
        self.keys = keys.KeyRing(key_file, lambda: self.clock.now().timestamp())
        try:
            keys.open_keys(key_file, lambda: self.db.get_meta("signing_key"), self._forget_db_key)
            self.keys.keys()  # a bad key file stops start-up, not the first request
        except BaseException:
            self.db.close()
            raise
        # real elapsed time, not the store's (possibly manual) clock: a rate is about requests
        self.rate_limiter = RateLimiter(self.settings.rate_limits, time.monotonic)
        self.pictures = PictureFolder(
            self.settings.pictures_dir or Path(db_path).resolve().parent / "pictures"
        )

    @property
    def simulated_payments(self) -> bool:
        return isinstance(self.provider, SimulatedPaymentProvider)

    def pay_base_url(self) -> str | None:
        """The base of pay URLs: the configured public URL, else (simulated payments only) the
        server's own listening URL; never a request's Host header, which a client chooses."""
        if self.settings.public_url:
            return self.settings.public_url
        return self.listening_url if self.simulated_payments else None

    def offline_rules(self) -> OfflineRules:
        """What an uploaded offline redemption is checked against (storeserver/offline.py)."""
        s = self.settings
        return OfflineRules(
            self.verify_keys,
            s.offline_member_daily_points,
            s.offline_kiosk_daily_points,
            s.offline_max_hours,
        )

    def today(self) -> dt.date:
        return self.ledger.today()

    @property
    def signing_key(self) -> Ed25519PrivateKey:
        """The current key: every new code and badge is signed with it."""
        return self.keys.current()

    @property
    def verify_keys(self) -> tuple[Ed25519PublicKey, ...]:
        """The keys a code may be signed with now: current, and previous during an overlap."""
        return self.keys.trusted()

    def _forget_db_key(self) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM meta WHERE key = 'signing_key'")

    def close(self) -> None:
        self.db.close()
