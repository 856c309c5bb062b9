"""The FastAPI application: error answers and the routers."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import staff
from ..errors import MAX_MESSAGE_CHARS, SHOWN_CHARS, ApiError, TooManyRequests, capped
from ..models import ErrorBody
from ..store import Store
from . import catalog, kiosks, members, payments, redemptions, staff_signin, wheel
from .auth import API_VERSION
from .limits import BodyLimit

log = logging.getLogger(__name__)

_ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 404, 409, 413, 422)}
ROUTERS = (kiosks, catalog, members, staff_signin, redemptions, payments, wheel)


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """Every refusal's body; the message capped, so none echoes client input at any length."""
    return JSONResponse(
        {"error": code, "message": capped(message, MAX_MESSAGE_CHARS)}, status_code=status
    )


def create_app(store: Store) -> FastAPI:
    app = FastAPI(
        title="Loyalty kiosk store server",
        version=API_VERSION,
        description="Reference store server for the self-service loyalty kiosk. "
        "Every call but health, enrollment and the wheel's seeds needs `Authorization: Bearer "
        "<token>`: a kiosk's (from enrollment) or an account's (cashier, manager, admin, "
        "technician, member-app); each route names the roles it admits (docs/security.md).",
        responses=_ERRORS,
    )
    app.state.store = store
    # outermost: a body over the limit is refused before any route or model reads it
    app.add_middleware(BodyLimit)
    _add_error_handlers(app)
    for module in ROUTERS:
        app.include_router(module.router)
    if store.simulated_payments:  # anyone may mark a payment paid: the demo's routes only
        app.include_router(payments.simulated)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(TooManyRequests)
    async def _rate_limited(request: Request, exc: TooManyRequests) -> JSONResponse:
        response = error_response(exc.status, exc.code, exc.message)
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    @app.exception_handler(staff.StaffLocked)
    async def _staff_locked(request: Request, exc: staff.StaffLocked) -> JSONResponse:
        # the body stays {error, message} like every refusal; the wait goes in the standard header
        response = error_response(exc.status, exc.code, exc.message)
        if exc.retry_after_s is not None:  # None: locked until a manager unlocks
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "malformed_json", "the request body is not valid JSON")
        first = errors[0] if errors else {}
        # a location may name a key the client made up: each part capped
        where = ".".join(capped(str(p), SHOWN_CHARS) for p in first.get("loc", ()) if p != "body")
        return error_response(
            422, "invalid_request", f"{where or 'body'}: {first.get('msg', 'invalid')}"
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        response = error_response(exc.status_code, code, str(exc.detail))
        response.headers.update(exc.headers or {})  # e.g. Allow on 405
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "the store server failed; see its log")
