"""Identify a member from a scanned code: verify offline, resolve online, else show the cache.

Steps (docs/members.md): classify the payload; staff and technician codes are routed, not
verified here (:class:`NotAMemberCode`); a member code is verified offline (signature, expiry)
and its nonce recorded in the journal, so a screenshot replay is refused, also after a
restart; then the store server resolves it for the fresh view, which is cached in the journal
table ``member_cache``. When the server cannot be reached (or answers garbage) the last cached
view of that member is shown with its age, if younger than ``offline.member_cache_hours``.

Safe mode (corrupt journal, read-only and empty): codes are still accepted, online only, with
the replay guard in memory. See :class:`MemberIdentifier` for why that is safe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from kiosk.domain.member_codes import (
    CLOCK_SKEW_S,
    CodeKind,
    CodeRejected,
    CodeVerifier,
    Keys,
    MemoryNonceStore,
    ReplayGuard,
    VerifiedCode,
    trusted_keys,
)
from kiosk.domain.member_view import (
    MemberView,
    UnusableAnswer,
    describe_age,
    parse_member_view,
    view_from_record,
    view_to_record,
)
from kiosk.domain.payloads import PayloadKind, classify_payload
from kiosk.domain.receipts import Bilingual
from kiosk.errors import JournalError, Rejected, StoreServerError, UserFacingError
from kiosk.i18n import render
from kiosk.ports import StoreServer
from kiosk.storage import tables
from kiosk.storage.journal import Journal
from kiosk.storage.nonces import JournalNonceStore

__all__ = [
    "CACHE_TABLE",
    "CodeRefused",
    "Identified",
    "IdentifyError",
    "MemberIdentifier",
    "MemberRefused",
    "NotAMemberCode",
    "OfflineUnavailable",
]

log = logging.getLogger(__name__)

CACHE_TABLE = tables.MEMBER_CACHE
_MEMBER_ONLY = frozenset({CodeKind.MEMBER})
_SCANNER_WHITESPACE = " \t\r\n\x0b\x0c"  # as kiosk.domain.member_codes strips it

# what the member reads (kiosk/locale/identify.toml); str() of an error is for the technician
_CODE_TEXTS = {  # CodeRejected's reason: its text
    "malformed": "identify.code.malformed",
    "forged": "identify.code.forged",
    "expired": "identify.code.expired",
    "not_yet_valid": "identify.code.not_yet_valid",
    "replayed": "identify.code.replayed",
    "wrong_kind": "identify.code.wrong_kind",
}
_CODE_OTHER = "identify.code.other"
_UNKNOWN_MEMBER = "identify.unknown_member"
_REFUSED = "identify.refused"
_OFFLINE = "identify.offline"
_FAULT = "identify.fault"
_ROUTED = {
    PayloadKind.STAFF: "identify.routed.staff",
    PayloadKind.TECHNICIAN: "identify.routed.technician",
}


# ---- results and errors ---------------------------------------------------------------------------


class IdentifyError(UserFacingError):
    """Identification failed. ``key`` names what the member reads (``message``, both
    languages), ``detail`` what a technician does (``str()`` has both).

    ``reason`` is a stable word the UI may switch on.
    """

    def __init__(self, reason: str, detail: str, key: str) -> None:
        super().__init__(key, detail)
        self.reason = reason

    @property
    def message(self) -> Bilingual:
        return render(self)

    @property
    def zh(self) -> str:
        return self.message.zh

    @property
    def en(self) -> str:
        return self.message.en


class CodeRefused(IdentifyError):
    """The code was refused, by this kiosk or by the server; ``reason`` as CodeRejected's
    (``malformed``, ``forged``, ``expired``, ``not_yet_valid``, ``replayed``, ``wrong_kind``)."""


class NotAMemberCode(IdentifyError):
    """A staff badge or technician code: not an error, a routing. The UI passes ``payload`` to
    the staff or technician flow, which verifies it; its nonce is untouched here."""

    def __init__(self, kind: PayloadKind, payload: str) -> None:
        super().__init__(
            "wrong_kind",
            f"a {kind.value} code was scanned on the member screen: route it to the {kind.value} "
            "flow",
            _ROUTED[kind],
        )
        self.kind = kind
        self.payload = payload


class MemberRefused(IdentifyError):
    """The server refused to show the member (``unknown_member``, ``bad_token``, ...)."""

    def __init__(self, rejection: Rejected) -> None:
        key = _UNKNOWN_MEMBER if rejection.code == "unknown_member" else _REFUSED
        super().__init__(rejection.code, str(rejection), key)
        self.status = rejection.status
        self.code = rejection.code


class OfflineUnavailable(IdentifyError):
    """The server is unavailable and no cached view may be shown. ``reason``: ``no_cache``,
    ``stale`` (``age_s`` set), ``disabled`` (member_cache_hours = 0), ``safe_mode``, ``clock``."""

    def __init__(self, reason: str, detail: str, age_s: float | None = None) -> None:
        super().__init__(reason, detail, _OFFLINE)
        self.age_s = age_s


@dataclass(frozen=True)
class Identified:
    """A member identified: the view, fresh (``online``) or cached ``age_s`` seconds ago."""

    view: MemberView
    online: bool
    age_s: float  # 0.0 when fresh
    code: VerifiedCode
    cached: bool  # the view is (now) in the offline cache; False in safe mode or when disabled
    # the server's member session for this code (None offline): online holds and spins need it
    session: str | None = field(default=None, repr=False)
    # the signed code as scanned: an offline redemption uploads it for the server to check
    code_text: str | None = field(default=None, repr=False)

    @property
    def age_text(self) -> Bilingual:
        """For the "as of ..." mark on an offline view, e.g. "3 h ago" (member.age.*)."""
        return render(describe_age(self.age_s))


# ---- the use case ---------------------------------------------------------------------------------


class MemberIdentifier:
    """Turns a scanned payload into an :class:`Identified` member, or an :class:`IdentifyError`.

    Safe mode: the journal cannot record nonces, so they are kept in memory for this process.
    That is safe enough for identification because (1) a safe-mode journal is read-only, so no
    redemption can start (each needs a journal record first) and a replay can only show a
    masked view; (2) the view is online only (nothing is cached) and the server still refuses
    expired codes and codes already used at another kiosk; (3) only a replay on this kiosk
    across a restart within the code's 60 s would pass. The UI shows safe mode from
    ``journal.safe_mode``.
    """

    def __init__(
        self,
        server: StoreServer,
        journal: Journal,
        public_keys: Keys | bytes | str,
        *,
        now: Callable[[], float],
        cache_hours: int,
        clock_skew_s: int = CLOCK_SKEW_S,
    ) -> None:
        self._server = server
        self._journal = journal
        self._now = now
        self._cache_s = cache_hours * 3600
        self._cache_hours = cache_hours
        self._clock_skew_s = clock_skew_s
        key = trusted_keys(public_keys)  # shared TrustedKeys: a key rotation reaches us
        self._durable = CodeVerifier(
            key, ReplayGuard(JournalNonceStore(journal)), clock_skew_s=clock_skew_s
        )
        self._in_memory = CodeVerifier(
            key, ReplayGuard(MemoryNonceStore()), clock_skew_s=clock_skew_s
        )
        if journal.safe_mode:
            log.warning(
                "journal in safe mode: members are identified online only, code nonces are "
                "kept in memory and no member view is cached"
            )

    def identify(self, payload: str) -> Identified:
        """Verify the code, then the fresh view from the server, else the cached one."""
        now = self._now()
        code = self._accept(payload, now)
        text = payload.strip(_SCANNER_WHITESPACE)
        try:
            data = self._server.resolve_member(text)
        except Rejected as exc:
            raise self._refused(exc, code.subject) from None
        except StoreServerError as exc:  # Unreachable, BadResponse: no usable answer
            return self._offline(code, text, now, str(exc))
        try:
            view = parse_member_view(data, now)
            if view.member_id != code.subject:
                raise UnusableAnswer(
                    f"store server answered code of {code.subject} with member "
                    f"{view.member_id}: check the store server"
                )
        except UnusableAnswer as exc:
            log.error("%s", exc)
            return self._offline(code, text, now, str(exc))
        session = data.get("member_session")  # the client's parser made it a token or None
        if not isinstance(session, str):
            session = None
        if session is None:
            log.warning("store server opened no member session for %s: holds will ask for a "
                        "new scan (an older store server?)", view.member_id)  # fmt: skip
        log.info("member %s identified online", view.member_id)
        return Identified(
            view, online=True, age_s=0.0, code=code, cached=self._store(view),
            session=session, code_text=text,
        )  # fmt: skip

    def remember(self, view: MemberView) -> None:
        """After a transaction: keep a cached view in step with the balance shown, so an
        offline scan later does not offer points already spent (only a view already cached)."""
        journal = self._journal
        if self._cache_s and not journal.safe_mode and journal.get(CACHE_TABLE, view.member_id):
            self._store(view)

    def purge_expired(self) -> int:
        """Delete cached views older than ``cache_hours`` (or unreadable); returns how many."""
        if self._journal.safe_mode:
            return 0
        now = self._now()

        def expired(record: object) -> bool:
            at = record.get("fetched_at") if isinstance(record, dict) else None
            if isinstance(at, bool) or not isinstance(at, int | float):
                return True
            return not -self._cache_s < now - at < self._cache_s

        gone = self._journal.find(CACHE_TABLE, expired)
        for member_id in gone:
            self._journal.delete(CACHE_TABLE, member_id)
        if gone:
            log.info("purged %d cached member views", len(gone))
        return len(gone)

    # ---- steps -----------------------------------------------------------------------------------

    def _accept(self, payload: str, now: float) -> VerifiedCode:
        kind = classify_payload(payload) if isinstance(payload, str) else PayloadKind.UNKNOWN
        if kind in _ROUTED:
            raise NotAMemberCode(kind, payload)
        verifier = self._in_memory if self._journal.safe_mode else self._durable
        try:
            return verifier.accept(payload, int(now), kinds=_MEMBER_ONLY)
        except CodeRejected as exc:
            raise CodeRefused(
                exc.reason, str(exc), _CODE_TEXTS.get(exc.reason, _CODE_OTHER)
            ) from None
        except JournalError as exc:  # the nonce cannot be recorded: never accept unrecorded
            raise IdentifyError(
                "journal", f"member code refused, its nonce cannot be recorded: {exc}", _FAULT
            ) from exc

    def _refused(self, exc: Rejected, member_id: str) -> IdentifyError:
        if exc.code.startswith("code_"):  # code_expired, code_replayed (other kiosk), ...
            reason = exc.code.removeprefix("code_")
            return CodeRefused(reason, str(exc), _CODE_TEXTS.get(reason, _CODE_OTHER))
        if exc.code == "not_a_member_code":
            return CodeRefused("wrong_kind", str(exc), _CODE_TEXTS["wrong_kind"])
        if exc.code == "unknown_member":  # gone from the store: its cached view goes too
            self._drop(member_id)
        log.warning("store server refused member %s: %s", member_id, exc)
        return MemberRefused(exc)

    def _offline(self, code: VerifiedCode, text: str, now: float, cause: str) -> Identified:
        member_id = code.subject
        why = f"store server unavailable ({cause})"
        if self._cache_s == 0:
            raise OfflineUnavailable(
                "disabled", f"{why}; offline member views are off (offline.member_cache_hours = 0)"
            )
        if self._journal.safe_mode:
            raise OfflineUnavailable(
                "safe_mode",
                f"{why}; the journal is in safe mode so nothing is cached: "
                f"{self._journal.safe_mode_reason}",
            )
        view = self._cached(member_id)
        if view is None:
            raise OfflineUnavailable(
                "no_cache",
                f"{why}; member {member_id} was not seen on this kiosk in the last "
                f"{self._cache_hours} h, so nothing can be shown: check the network and the "
                "store server",
            )
        age = now - view.fetched_at
        if age < -self._clock_skew_s:
            raise OfflineUnavailable(
                "clock",
                f"{why}; the cached view of {member_id} is dated {-age:.0f} s in the future: "
                "check the kiosk clock (NTP)",
            )
        age = max(0.0, age)
        if age >= self._cache_s:
            self._drop(member_id)
            raise OfflineUnavailable(
                "stale",
                f"{why}; the cached view of {member_id} is {age / 3600:.1f} h old, over "
                f"offline.member_cache_hours = {self._cache_hours}: check the network",
                age_s=age,
            )
        log.warning("%s: showing member %s as cached %.0f s ago", why, member_id, age)
        return Identified(view, online=False, age_s=age, code=code, cached=True, code_text=text)

    # ---- the cache ---------------------------------------------------------------------------------

    def _store(self, view: MemberView) -> bool:
        if self._cache_s == 0:
            return False
        if self._journal.safe_mode:
            log.warning("journal in safe mode: member view of %s not cached", view.member_id)
            return False
        try:
            self._journal.put(CACHE_TABLE, view.member_id, view_to_record(view))
        except JournalError as exc:  # shown anyway: the cache is a convenience
            log.error("member view of %s not cached: %s", view.member_id, exc)
            return False
        return True

    def _cached(self, member_id: str) -> MemberView | None:
        record = self._journal.get(CACHE_TABLE, member_id)
        if record is None:
            return None
        try:
            view = view_from_record(record)
        except JournalError as exc:
            log.warning("cached view of %s dropped: %s", member_id, exc)
            self._drop(member_id)
            return None
        return view if view.member_id == member_id else None

    def _drop(self, member_id: str) -> None:
        if self._journal.safe_mode:
            return
        try:
            self._journal.delete(CACHE_TABLE, member_id)
        except JournalError as exc:
            log.error("cached view of %s not deleted: %s", member_id, exc)
