"""Errors the API answers with: ``{"error": CODE, "message": ...}`` and an HTTP status."""

from __future__ import annotations

SHOWN_CHARS = 64  # the most of a client's value a message echoes
MAX_MESSAGE_CHARS = 300  # the most any refusal's message says


def capped(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """A value the client sent, as a message quotes it: its repr, capped, so no refusal
    echoes client input at any length."""
    return capped(repr(value), limit)


class ApiError(Exception):
    """A request the server refuses; nothing was changed."""

    status = 400

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        message = capped(message, MAX_MESSAGE_CHARS)
        super().__init__(message)
        self.code = code
        self.message = message
        if status is not None:
            self.status = status


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class Unauthorized(ApiError):
    status = 401


class BadRequest(ApiError):
    status = 400


class TooManyRequests(ApiError):
    """A caller over its rate limit; ``retry_after_s`` goes in the Retry-After header."""

    status = 429

    def __init__(self, code: str, message: str, retry_after_s: int) -> None:
        super().__init__(code, message)
        self.retry_after_s = retry_after_s


class SchemaError(Exception):
    """The database file's schema is not the one this release runs (``storeserver/migrations``);
    ``exit_code`` is the command line's exit status for it."""

    exit_code = 3


class DatabaseBehind(SchemaError):
    """The file is at an older revision (or from before migrations): ``storeserver migrate``."""

    exit_code = 3


class DatabaseAhead(SchemaError):
    """The file is at a revision this release does not know: a newer release wrote it."""

    exit_code = 4


class MigrationFailed(SchemaError):
    """A migration stopped; its transaction rolled back, the file is as it was."""

    exit_code = 5
