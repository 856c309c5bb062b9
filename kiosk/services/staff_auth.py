"""Staff sign-in for restocking: badge + PIN, online first, offline against the kiosk's cache.

Online, the store server checks the PIN and keeps the authoritative lockout; the kiosk mirrors
its answers. On success the kiosk stores its own salted hash of the PIN (journal table
``staff_pins``), so the same staff member can sign in while the server is unreachable, for
``cache_days`` (3 by default, at most 7; 0 keeps no hash at all). Wrong PINs are counted per
staff id in the journal (``staff_failures``), so a restart does not lift a lockout, and the
server's escalating rule applies offline (kiosk/domain/staff_lockout.py).

The server's list of staff who may not sign in offline (disabled, or locked until a manager
unlocks them) arrives with each heartbeat (:meth:`StaffAuthenticator.set_revoked`, journal table
``staff_revoked``): their cached PINs are dropped and offline they are refused.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kiosk.domain.member_codes import Keys, VerifiedCode, trusted_keys
from kiosk.domain.staff import (
    CachedPin,
    RevokedStaff,
    ScryptParams,
    StaffAuthUnavailable,
    StaffLocked,
    StaffRejected,
    check_pin_format,
    hash_pin,
    pin_matches,
    verify_badge,
)
from kiosk.domain.staff_lockout import (
    FailureRecord,
    LockoutPolicy,
    attempts_left,
    mirror_server_lock,
    register_failure,
    register_success,
    seconds_locked,
)
from kiosk.errors import KioskError, Rejected, StoreServerError, Unreachable
from kiosk.ports import StoreServer
from kiosk.storage import tables
from kiosk.storage.journal import Journal

log = logging.getLogger(__name__)

PIN_TABLE = tables.STAFF_PINS
FAILURE_TABLE = tables.STAFF_FAILURES
REVOKED_TABLE, REVOKED_KEY = tables.STAFF_REVOKED, "list"
DEFAULT_CACHE_DAYS = 3
MAX_CACHE_DAYS = 7  # a stolen card's hashes are of PINs at most this old


@dataclass(frozen=True)
class StaffSession:
    """A signed-in staff member; ``online`` False when only the kiosk's cache vouched."""

    staff_id: str
    name: str
    online: bool


class StaffAuthenticator:
    """Signs staff in with a badge and a PIN (see the module docstring). Thread-safe."""

    def __init__(
        self,
        server: StoreServer,
        journal: Journal,
        verifier_public_key: Keys | bytes | str,
        now: Callable[[], float] = time.time,
        *,
        cache_days: float = DEFAULT_CACHE_DAYS,
        policy: LockoutPolicy | None = None,
        hash_params: ScryptParams | None = None,
        tz: dt.tzinfo = dt.UTC,
    ) -> None:
        if not 0 <= cache_days <= MAX_CACHE_DAYS:
            raise ValueError(f"cache_days must be 0 to {MAX_CACHE_DAYS}, not {cache_days}")
        self._key = trusted_keys(verifier_public_key)  # shared: a key rotation reaches us
        self._server = server
        self._journal = journal
        self._now = now
        self._cache_max_age_s = cache_days * 86400
        self._policy = policy or LockoutPolicy()
        self._hash_params = hash_params or ScryptParams()
        self._tz = tz  # the store's: the day of the daily cap
        # one sign-in at a time: each reads, then rewrites, the staff member's failure record
        self._lock = threading.Lock()

    @property
    def policy(self) -> LockoutPolicy:
        """The wrong-PIN rule PINs checked offline are counted by."""
        return self._policy

    def use_policy(self, policy: LockoutPolicy) -> None:
        """The store server's wrong-PIN rule (from its catalog), for PINs checked offline."""
        with self._lock:
            if policy != self._policy:
                log.info("staff PIN lockout rule from the store server: %s", policy)
            self._policy = policy

    def authenticate(self, badge_text: str, pin: str) -> StaffSession:
        """Sign in, or raise StaffRejected / StaffLocked / StaffAuthUnavailable (all with the
        ``key`` and ``fields`` of their text); a server refusal other than those stays Rejected."""
        with self._lock:
            now = self._now()
            if self._journal.safe_mode:
                raise StaffAuthUnavailable(
                    "journal_safe_mode",
                    "staff.auth.unavailable",
                    detail=self._journal.safe_mode_reason or "journal in safe mode",
                )
            badge = verify_badge(badge_text, self._key, int(now))
            staff_id = badge.subject
            check_pin_format(pin)
            failures = self._failures(staff_id)
            locked = seconds_locked(failures, now)
            if locked:  # a lock until online is left to the server when it answers
                raise StaffLocked(locked, detail=f"staff {staff_id} locked on this kiosk")
            try:
                identity = self._server.verify_staff(badge_text, pin)
            except Unreachable as exc:
                log.info("staff %s: store server unreachable, checking offline (%s)", staff_id, exc)
                return self._offline(badge, pin, failures, now)
            except Rejected as exc:
                raise self._refused_online(staff_id, pin, failures, exc, now) from None
            if identity.staff_id != staff_id:
                raise StoreServerError(
                    f"store server accepted staff {identity.staff_id} for a badge of {staff_id}: "
                    "check the store server version"
                )
            if self._cache_max_age_s > 0:
                entry = CachedPin(staff_id, identity.name, hash_pin(pin, self._hash_params), now)
                self._journal.put(PIN_TABLE, staff_id, entry.to_record())
            else:
                self._journal.delete(PIN_TABLE, staff_id)  # offline sign-in is off: keep none
            self._save_failures(staff_id, register_success(failures, self._today(now)))
            log.info("staff %s signed in online", staff_id)
            return StaffSession(staff_id, identity.name, online=True)

    def set_revoked(self, revoked: RevokedStaff) -> None:
        """The store server's revocation list (from a heartbeat): kept in the journal, and the
        cached PINs of the staff it names dropped (revoked badges keep their owner's)."""
        with self._lock:
            stored = self._revoked()
            if stored is not None and stored.version == revoked.version:
                return
            self._journal.put(REVOKED_TABLE, REVOKED_KEY, revoked.to_record())
            for staff_id in sorted(revoked.staff_ids):
                if self._journal.get(PIN_TABLE, staff_id) is not None:
                    self._journal.delete(PIN_TABLE, staff_id)
                    log.warning(
                        "staff %s revoked by the store server: cached PIN dropped", staff_id
                    )
            log.info("revoked staff list %s: %d staff", revoked.version, len(revoked.staff_ids))

    # ---- online refusals ------------------------------------------------------------------------

    def _refused_online(
        self, staff_id: str, pin: str, failures: FailureRecord, exc: Rejected, now: float
    ) -> KioskError:
        if exc.code == "staff_locked":
            # a kiosk.errors.RetryLater carries the server's Retry-After (read by name: the
            # StoreServer port promises the attribute, not the class); none: until unlocked
            wait = getattr(exc, "retry_after_s", None)
            self._save_failures(staff_id, mirror_server_lock(failures, now, wait))
            if wait is None:  # nor offline: the PIN may be what someone is guessing
                self._journal.delete(PIN_TABLE, staff_id)
            log.warning("staff %s is locked by the store server (%s s)", staff_id, wait)
            return StaffLocked(None if wait is None else int(wait), detail=str(exc))
        if exc.code == "bad_pin":
            cached = self._cached(staff_id)
            if cached is not None and pin_matches(cached.pin_hash, pin):
                # the cached PIN is no longer the PIN: it was changed (or reset) on the server
                self._journal.delete(PIN_TABLE, staff_id)
                log.info("staff %s: PIN changed on the server, cached PIN dropped", staff_id)
            return self._count_failure(staff_id, failures, now, detail=str(exc))
        if exc.code == "bad_badge":
            # unknown or disabled on the server: the cache must not keep them signing in offline
            self._journal.delete(PIN_TABLE, staff_id)
            log.warning("staff %s refused by the store server: %s", staff_id, exc)
            return StaffRejected(
                "bad_badge",
                "staff.auth.badge_disabled",
                detail=str(exc),
            )
        return exc  # not about the staff member (e.g. the kiosk token): for a technician

    # ---- offline ----------------------------------------------------------------------------------

    def _offline(
        self, badge: VerifiedCode, pin: str, failures: FailureRecord, now: float
    ) -> StaffSession:
        staff_id, revoked = badge.subject, self._revoked()
        if revoked is not None and revoked.refuses(badge):
            # a staff member on the list loses the cached PIN too; a revoked badge does not:
            # its owner's newer badge still signs in with it
            if staff_id in revoked.staff_ids:
                self._journal.delete(PIN_TABLE, staff_id)
            log.warning("staff %s badge refused offline: on the revoked list", staff_id)
            raise StaffRejected(
                "bad_badge",
                "staff.auth.badge_disabled",
                detail=f"staff {staff_id} or this badge of theirs (issued {badge.issued}) is "
                f"revoked (list {revoked.version})",
            )
        if failures.until_online:
            raise StaffLocked(None, detail=f"staff {staff_id} locked until an online sign-in")
        cached = self._cached(staff_id)
        if cached is None:
            raise StaffAuthUnavailable(
                "offline_no_cache",
                "staff.auth.offline_no_cache",
                detail=f"no cached PIN for staff {staff_id} on this kiosk",
            )
        if not cached.is_fresh(now, self._cache_max_age_s):
            self._journal.delete(PIN_TABLE, staff_id)  # of no use any more: do not keep it
            raise StaffAuthUnavailable(
                "offline_cache_stale",
                "staff.auth.offline_cache_stale",
                detail=f"cached PIN of staff {staff_id} is older than "
                f"{self._cache_max_age_s / 86400:g} days (or the kiosk clock went back)",
            )
        # Count the attempt before checking it: cutting the power during the check must not
        # give a free try. A right PIN clears the count again.
        today = self._today(now)
        counted = register_failure(failures, now, today, self._policy)
        self._save_failures(staff_id, counted)
        if pin_matches(cached.pin_hash, pin):
            self._save_failures(staff_id, register_success(failures, today))
            log.info("staff %s signed in offline (cached PIN)", staff_id)
            return StaffSession(staff_id, cached.name, online=False)
        raise self._refusal(staff_id, counted, now, detail="offline check against cached PIN")

    # ---- failure records ----------------------------------------------------------------------

    def _count_failure(
        self, staff_id: str, failures: FailureRecord, now: float, detail: str
    ) -> KioskError:
        counted = register_failure(failures, now, self._today(now), self._policy)
        self._save_failures(staff_id, counted)
        if counted.until_online and not seconds_locked(counted, now):
            # the server answered "wrong PIN", not "locked": this kiosk's lock until online
            # is about its offline checks, and says nothing of the tries the server allows
            return StaffRejected("bad_pin", "staff.auth.wrong_pin", detail=detail)
        return self._refusal(staff_id, counted, now, detail)

    def _refusal(
        self, staff_id: str, counted: FailureRecord, now: float, detail: str
    ) -> KioskError:
        if counted.until_online:
            log.warning("staff %s locked on this kiosk until an online sign-in", staff_id)
            return StaffLocked(None, detail=detail)
        locked = seconds_locked(counted, now)
        if locked:
            log.warning("staff %s locked on this kiosk for %d s", staff_id, locked)
            return StaffLocked(locked, detail=detail)
        left = attempts_left(counted, now, self._today(now), self._policy)
        return StaffRejected(
            "bad_pin",
            "staff.auth.wrong_pin_last" if left == 1 else "staff.auth.wrong_pin_left",
            detail=detail,
            attempts_left=left,
            left=left,
        )

    def _failures(self, staff_id: str) -> FailureRecord:
        record = self._journal.get(FAILURE_TABLE, staff_id)
        if record is None:
            return FailureRecord()
        try:
            return FailureRecord.from_record(record)
        except ValueError as exc:
            log.error("staff %s: unreadable failure record ignored: %s", staff_id, exc)
            return FailureRecord()

    def _save_failures(self, staff_id: str, record: FailureRecord) -> None:
        if record == FailureRecord():
            self._journal.delete(FAILURE_TABLE, staff_id)  # writes nothing when there is none
        else:
            self._journal.put(FAILURE_TABLE, staff_id, record.to_record())

    def _today(self, now: float) -> dt.date:
        return dt.datetime.fromtimestamp(now, self._tz).date()

    def _revoked(self) -> RevokedStaff | None:
        record = self._journal.get(REVOKED_TABLE, REVOKED_KEY)
        if record is None:
            return None
        try:
            return RevokedStaff.from_record(record)
        except ValueError as exc:  # only this class writes it: whoever could damage it could
            # as well delete it, so failing closed here would protect nothing
            log.error("unreadable revoked staff list ignored until the next heartbeat: %s", exc)
            return None

    def _cached(self, staff_id: str) -> CachedPin | None:
        record = self._journal.get(PIN_TABLE, staff_id)
        if record is None:
            return None
        try:
            return CachedPin.from_record(staff_id, record)
        except ValueError as exc:
            log.error("staff %s: unreadable cached PIN ignored: %s", staff_id, exc)
            return None
