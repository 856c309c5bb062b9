"""Errors the API answers with: ``{"error": CODE, "message": ...}`` and an HTTP status."""

from __future__ import annotations


class ApiError(Exception):
    """A request the server refuses; nothing was changed."""

    status = 400

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
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
