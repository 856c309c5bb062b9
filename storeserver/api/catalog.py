"""The kiosk's catalog and item pictures; coupons taken at the till."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header
from fastapi.responses import Response

from .. import catalog, pictures
from ..models import CouponRedeemRequest
from ..store import Store
from .auth import Allowed, Caller, Role, store_of

router = APIRouter()

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


@router.get("/v1/catalog", tags=["catalog"])
def get_catalog(
    caller: Caller = Depends(Allowed(Role.KIOSK)), store: Store = Depends(store_of)
) -> dict:
    """Items with this kiosk's stock, a version, the store's offline caps (`offline`) and the
    wrong-PIN rule kiosks apply to staff PINs they check offline (`staff_lockout`)."""
    with store.db.reading() as conn:  # one snapshot; a poll writes nothing
        return catalog.catalog_for(
            conn, caller.name, store.pictures, store.settings.offline_limits()
        )


@router.get(
    "/v1/pictures/{name}",
    tags=["catalog"],
    response_class=Response,
    responses=_PICTURE_RESPONSES,
)
def get_picture(
    name: str,
    if_none_match: str | None = Header(None, description="an ETag the kiosk has"),
    _: Caller = Depends(Allowed(Role.KIOSK)),
    store: Store = Depends(store_of),
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


@router.post("/v1/coupons/{code}/redeem", tags=["staff"])
def redeem_coupon(
    code: str,
    body: CouponRedeemRequest,
    _: Caller = Depends(Allowed(Role.CASHIER, Role.MANAGER, Role.ADMIN)),
    store: Store = Depends(store_of),
) -> dict:
    """The cashier takes a printed coupon off a purchase, once."""
    with store.db.transaction() as conn:
        return catalog.redeem_coupon(conn, store.clock, code, body.ref, store.ledger.tz)
