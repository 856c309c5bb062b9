"""The one error hierarchy of the kiosk and its drivers (docs/errors.md lists every class,
where it is raised and what a technician does; tests/kiosk/test_error_tree.py keeps every
exception class under kiosk/ and drivers/ in it).

Every message says what a technician or staff member should do next, e.g.
"printer on /dev/ttyUSB0 reports paper out: load a 58 mm roll".
"""


class KioskError(Exception):
    """Base of every error the kiosk raises on purpose."""


class UserFacingError(KioskError):
    """An error a person reads (staff on the restock screen, a member at the kiosk).

    ``key`` names its text in ``kiosk/locale/*.toml`` and ``fields`` fill it in: the screen
    shows ``kiosk.i18n.render(exc)`` in its language, never a text made here. ``str()``, for
    the log, is that text in both languages plus ``detail``: what a technician should know.
    """

    def __init__(self, key: str, detail: str = "", **fields: object) -> None:
        super().__init__(key, detail)
        self.key, self.fields, self.detail = key, fields, detail

    def __str__(self) -> str:
        from kiosk.i18n import render  # here: kiosk.i18n imports this module

        try:
            text = render(self)
            shown = f"{text.zh} / {text.en}"
        except ConfigError:  # no such key: the log still says which
            shown = f"{self.key}({', '.join(f'{k}={v!r}' for k, v in self.fields.items())})"
        return shown + (f" ({self.detail})" if self.detail else "")


class ConfigError(KioskError):
    """The configuration file is missing, unreadable or holds a bad value."""


class JournalError(KioskError):
    """The local transaction journal cannot be read or written."""


class HardwareError(KioskError):
    """A device (printer, scanner, locker) failed."""


class PrinterError(HardwareError):
    """The receipt printer failed (paper out, unplugged, timeout)."""


class ScannerError(HardwareError):
    """The QR camera failed (missing, unplugged, unreadable frames)."""


class Picamera2Unavailable(ScannerError):
    """scanner.kind = "picamera2" but Picamera2 (apt's python3-picamera2) cannot be imported."""


class LockerError(HardwareError):
    """A locker compartment failed (jammed door, relay fault)."""


class StoreServerError(KioskError):
    """A call to the store server failed."""


class Unreachable(StoreServerError):
    """The store server could not be reached or did not answer in time."""


class BadResponse(Unreachable):
    """The server (or something posing as it) answered garbage: not JSON, or the wrong shape
    (kiosk/sync/parse.py says which field). An ``Unreachable``: the kiosk cannot know what the
    server decided, so it acts as if offline."""


class Rejected(StoreServerError):
    """The store server answered and refused the request: ``status`` (4xx) and its stable ``code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class RetryLater(Rejected):
    """A refusal that says when to ask again (a ``Retry-After`` header in seconds), e.g. 423
    ``staff_locked``; ``retry_after_s`` is that wait."""

    def __init__(self, status: int, code: str, message: str, retry_after_s: int) -> None:
        super().__init__(status, code, message)
        self.retry_after_s = retry_after_s
