"""The HTTP API (FastAPI). Handlers are thin: they authenticate, then call the store's modules.

Every refusal is ``{"error": CODE, "message": ...}`` with a 4xx status and changes nothing,
except a wrong staff PIN, which is counted towards a lockout (staff.py).
"""

from __future__ import annotations

import datetime as dt
import html
import logging

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import catalog, codes, kiosks, members, pictures, spins, wheel
from . import staff as staff_accounts  # not 'staff': that is the staff-token dependency below
from .clock import iso
from .errors import ApiError, BadRequest, NotFound, Unauthorized
from .models import (
    AmountRequest,
    CouponRedeemRequest,
    EnrollRequest,
    ErrorBody,
    EventsRequest,
    HeartbeatRequest,
    RedemptionRequest,
    RegisterRequest,
    ResolveRequest,
    SpinRequest,
    StaffVerified,
    StaffVerifyRequest,
    VoidRequest,
)
from .store import Store

log = logging.getLogger(__name__)

API_VERSION = "1.0.0"
_bearer = HTTPBearer(
    auto_error=False, description="kiosk token from /v1/kiosks/enroll, or a staff token"
)
_ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 404, 409, 422)}
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_PICTURE_RESPONSES: dict[int | str, dict] = {
    200: {
        "description": f"the picture, PNG or JPEG, at most {pictures.MAX_PICTURE_BYTES} bytes",
        "content": {"image/png": _BINARY, "image/jpeg": _BINARY},
        "headers": {
            "ETag": {
                "description": "the quoted SHA-256 of the file (the catalog's picture_sha256)",
                "schema": {"type": "string"},
            }
        },
    },
    304: {"description": "unchanged: If-None-Match named the current ETag"},
}


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: ``*`` or any listed tag, compared weakly (``W/`` ignored)."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def create_app(store: Store) -> FastAPI:
    app = FastAPI(
        title="Loyalty kiosk store server",
        version=API_VERSION,
        description="Reference store server for the self-service loyalty kiosk. "
        "Kiosk calls need `Authorization: Bearer <kiosk token>`; cashier and staff calls a staff token.",
        responses=_ERRORS,
    )
    app.state.store = store

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(staff_accounts.StaffLocked)
    async def _staff_locked(request: Request, exc: staff_accounts.StaffLocked) -> JSONResponse:
        # the body stays {error, message} like every refusal; the wait goes in the standard header
        response = _error(exc.status, exc.code, exc.message)
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(400, "malformed_json", "the request body is not valid JSON")
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(422, "invalid_request", f"{where or 'body'}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        response = _error(exc.status_code, code, str(exc.detail))
        response.headers.update(exc.headers or {})  # e.g. Allow on 405
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, "internal", "the store server failed; see its log")

    def token(creds: HTTPAuthorizationCredentials | None) -> str:
        if creds is None or not creds.credentials:
            raise Unauthorized("missing_token", "send Authorization: Bearer <token>")
        return creds.credentials

    def kiosk(creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> str:
        return kiosks.kiosk_for_token(store.db.connection(), token(creds))

    def staff(creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> str:
        return kiosks.staff_for_token(store.db.connection(), token(creds))

    def base_url(request: Request) -> str:
        return str(request.base_url)

    # ---- health and kiosks -------------------------------------------------------------------
    @app.get("/v1/health", tags=["kiosks"])
    def health() -> dict:
        """Liveness and the server's clock (kiosks compare it with theirs)."""
        return {"status": "ok", "server_time": iso(store.clock.now()), "version": API_VERSION}

    @app.post("/v1/kiosks/enroll", tags=["kiosks"])
    def enroll(body: EnrollRequest) -> dict:
        """Exchange a one-time enrollment code for a kiosk token and the member-code public key."""
        with store.db.transaction() as conn:
            tok = kiosks.enroll(conn, store.clock, body.enrollment_code, body.kiosk_id)
        return {
            "kiosk_id": body.kiosk_id,
            "token": tok,
            "public_key": codes.public_key_b64(store.signing_key),
            "server_time": iso(store.clock.now()),
        }

    @app.post("/v1/kiosks/heartbeat", tags=["kiosks"])
    def heartbeat(body: HeartbeatRequest, kiosk_id: str = Depends(kiosk)) -> dict:
        with store.db.transaction() as conn:
            return kiosks.heartbeat(conn, store.clock, kiosk_id, body.health)

    @app.post("/v1/kiosks/events", tags=["kiosks"])
    def events(body: EventsRequest, kiosk_id: str = Depends(kiosk)) -> dict:
        """Outbox events, each applied once by event_id; offline redemptions may come back as conflicts."""
        ids = [e.event_id for e in body.events]
        if len(ids) != len(set(ids)):
            raise BadRequest("duplicate_event_id", "a batch must not repeat an event_id")
        results = kiosks.apply_events(
            store.redemptions, kiosk_id, [e.model_dump() for e in body.events]
        )
        return {"results": results}

    @app.get("/v1/kiosks", tags=["staff"])
    def list_kiosks(_: str = Depends(staff)) -> dict:
        return {"kiosks": kiosks.list_kiosks(store.db.connection())}

    # ---- catalog and coupons -----------------------------------------------------------------
    @app.get("/v1/catalog", tags=["catalog"])
    def get_catalog(kiosk_id: str = Depends(kiosk)) -> dict:
        return catalog.catalog_for(store.db.connection(), kiosk_id, store.pictures)

    @app.get(
        "/v1/pictures/{name}",
        tags=["catalog"],
        response_class=Response,
        responses=_PICTURE_RESPONSES,
    )
    def get_picture(
        name: str,
        if_none_match: str | None = Header(None, description="an ETag the kiosk has"),
        _: str = Depends(kiosk),
    ) -> Response:
        """An item picture the catalog names (`picture`), from the store's pictures folder.

        `name` is a plain file name (400 `bad_picture_name` otherwise, so never a path out of
        the folder); 404 `unknown_picture` when there is no such file, `unusable_picture` when
        it is not a PNG or JPEG or too large.
        """
        picture = store.pictures.get(name)
        headers = {"ETag": picture.etag, "Cache-Control": "no-cache"}
        if _etag_matches(if_none_match, picture.etag):
            return Response(status_code=304, headers=headers)
        return Response(picture.data, media_type=picture.content_type, headers=headers)

    @app.post("/v1/coupons/{code}/redeem", tags=["staff"])
    def redeem_coupon(code: str, body: CouponRedeemRequest, _: str = Depends(staff)) -> dict:
        """The cashier takes a printed coupon off a purchase, once."""
        with store.db.transaction() as conn:
            return catalog.redeem_coupon(conn, store.clock, code, body.ref, store.ledger.tz)

    # ---- members -----------------------------------------------------------------------------
    @app.post("/v1/members", tags=["staff"], status_code=201)
    def register(body: RegisterRequest, _: str = Depends(staff)) -> dict:
        with store.db.transaction() as conn:
            member_id = members.register(
                store.ledger, conn, body.name, body.phone, body.referred_by
            )
            return members.view(store.ledger, conn, member_id, None)

    @app.get("/v1/members/{member_id}", tags=["staff"])
    def get_member(member_id: str, _: str = Depends(staff)) -> dict:
        with store.db.transaction() as conn:
            return members.view(store.ledger, conn, member_id, None)

    @app.post("/v1/members/{member_id}/purchases", tags=["staff"])
    def purchase(member_id: str, body: AmountRequest, _: str = Depends(staff)) -> dict:
        """Points for a purchase at the member's tier rate (idempotent by ref)."""
        with store.db.transaction() as conn:
            earned = members.earn_purchase(
                store.ledger, conn, member_id, body.amount_cents, body.ref
            )
            return {"earned": earned, **members.view(store.ledger, conn, member_id, None)}

    @app.post("/v1/members/{member_id}/topups", tags=["staff"])
    def topup(member_id: str, body: AmountRequest, _: str = Depends(staff)) -> dict:
        """Stored value top-up; it earns points too (idempotent by ref)."""
        with store.db.transaction() as conn:
            earned = members.top_up(store.ledger, conn, member_id, body.amount_cents, body.ref)
            return {"earned": earned, **members.view(store.ledger, conn, member_id, None)}

    @app.post("/v1/members/{member_id}/code", tags=["staff"])
    def member_code(member_id: str, _: str = Depends(staff)) -> dict:
        """A fresh signed member code, as the member's phone app shows it."""
        with store.db.transaction() as conn:
            return members.issue_code(store.ledger, conn, store.signing_key, member_id)

    @app.post("/v1/members/resolve", tags=["kiosks"])
    def resolve(body: ResolveRequest, kiosk_id: str = Depends(kiosk)) -> dict:
        """Verify a scanned member code and return the member view for this kiosk."""
        with store.db.transaction() as conn:
            member_id = members.resolve_code(
                store.ledger, conn, store.signing_key, kiosk_id, body.code
            )
            return members.view(store.ledger, conn, member_id, kiosk_id)

    # ---- staff sign-in at a kiosk --------------------------------------------------------------
    @app.post(
        "/v1/staff/verify",
        tags=["kiosks"],
        responses={
            403: {"model": ErrorBody, "description": "bad_badge or bad_pin"},
            423: {
                "model": ErrorBody,
                "description": "staff_locked: too many wrong PINs",
                "headers": {
                    "Retry-After": {
                        "description": "seconds until the lock ends",
                        "schema": {"type": "integer"},
                    }
                },
            },
        },
    )
    def verify_staff(body: StaffVerifyRequest, kiosk_id: str = Depends(kiosk)) -> StaffVerified:
        """Check a staff badge and PIN (restocking sign-in).

        Badge problems are 403 `bad_badge`; a wrong PIN is 403 `bad_pin` and counts: the fifth
        in a row locks the staff member for 5 minutes (423 `staff_locked`, `Retry-After`).
        """
        found = staff_accounts.verify(
            store.db, store.clock, store.signing_key, kiosk_id, body.badge, body.pin
        )
        return StaffVerified(**found)

    # ---- redemptions -------------------------------------------------------------------------
    @app.post("/v1/redemptions", tags=["redemptions"])
    def create_redemption(
        request: Request, body: RedemptionRequest, kiosk_id: str = Depends(kiosk)
    ) -> dict:
        """Hold points and stock (and open a payment for a cash part). Idempotent by txn_id."""
        return store.redemptions.create(kiosk_id, body.model_dump(), base_url(request))

    @app.get("/v1/redemptions/{txn_id}", tags=["redemptions"])
    def get_redemption(txn_id: str, kiosk_id: str = Depends(kiosk)) -> dict:
        return store.redemptions.get(kiosk_id, txn_id)

    @app.post("/v1/redemptions/{txn_id}/capture", tags=["redemptions"])
    def capture(txn_id: str, kiosk_id: str = Depends(kiosk)) -> dict:
        """Commit after the door sensor confirmed the gift was taken. Idempotent."""
        return store.redemptions.capture(kiosk_id, txn_id)

    @app.post("/v1/redemptions/{txn_id}/void", tags=["redemptions"])
    def void(txn_id: str, body: VoidRequest, kiosk_id: str = Depends(kiosk)) -> dict:
        """Release the hold: points and stock back, payment cancelled or refunded. Idempotent."""
        return store.redemptions.void(kiosk_id, txn_id, body.reason)

    # ---- payments ----------------------------------------------------------------------------
    @app.get("/v1/payments/{payment_id}", tags=["payments"])
    def get_payment(payment_id: str, kiosk_id: str = Depends(kiosk)) -> dict:
        """A payment of one of this kiosk's redemptions."""
        conn = store.db.connection()
        payment = store.payments.get(conn, payment_id)
        try:
            store.redemptions.get(kiosk_id, payment.txn_id)
        except NotFound:
            raise NotFound(
                "unknown_payment", f"no payment {payment_id!r} for kiosk {kiosk_id}"
            ) from None
        return payment.view()

    @app.post("/v1/payments/{payment_id}/simulate-paid", tags=["payments"])
    def simulate_paid(payment_id: str) -> dict:
        """The simulated provider's 'member paid' callback (demo and tests only)."""
        if not store.simulated_payments:
            raise NotFound("not_simulated", "this server uses a real payment provider")
        with store.db.transaction() as conn:
            store.redemptions.sweep(conn)
            return store.payments.mark_paid(conn, payment_id).view()

    @app.get("/pay/{payment_id}", response_class=HTMLResponse, include_in_schema=False)
    def pay_page(payment_id: str) -> str:
        """What a phone shows after scanning the kiosk's payment QR (simulated provider)."""
        with store.db.transaction() as conn:
            store.redemptions.sweep(conn)
            p = store.payments.get(conn, payment_id)
        pid = html.escape(p.id)
        return (
            "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>"
            f"<h1>支付 Pay ¥{p.amount_cents / 100:.2f}</h1><p>状态 status: {html.escape(p.status)}</p>"
            f"<form method=post action='/v1/payments/{pid}/simulate-paid'><button>模拟支付 Simulate paying</button></form>"
        )

    # ---- wheel -------------------------------------------------------------------------------
    @app.get("/v1/wheels/{wheel_id}", tags=["wheel"])
    def get_wheel(
        wheel_id: str, member_id: str | None = None, kiosk_id: str = Depends(kiosk)
    ) -> dict:
        """Segments, odds at this kiosk now, rules, today's and tomorrow's seed commitments."""
        with store.db.transaction() as conn:
            out = wheel.info(conn, wheel_id, store.today(), kiosk_id)
        if member_id is not None:
            out["spins_left"] = spins.spins_left(store.redemptions, member_id, wheel_id)
        return out

    @app.get("/v1/wheels/{wheel_id}/seeds/{day}", tags=["wheel"])
    def get_seed(wheel_id: str, day: dt.date) -> dict:
        """A past day's seed and every spin of that day, so anyone can recompute the outcomes."""
        with store.db.transaction() as conn:
            return wheel.revealed_seed(conn, wheel_id, day, store.today())

    @app.post("/v1/wheel/spins", tags=["wheel"])
    def spin(body: SpinRequest, kiosk_id: str = Depends(kiosk)) -> dict:
        """Spin: hold the cost, draw the prize, reserve its stock. Idempotent by txn_id."""
        return spins.spin(store.redemptions, kiosk_id, body.model_dump())

    return app
