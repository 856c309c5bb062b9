"""Payments of a points + cash redemption's cash part.

``simulated`` holds the simulated provider's routes (the "pay" page and its "member paid"
callback); the app includes them only when the store runs the simulated provider, so on any
other server they do not exist (404).
"""

from __future__ import annotations

import html
import json

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from ..errors import NotFound, shown
from ..store import Store
from .auth import Allowed, Caller, Public, Role, store_of

router = APIRouter()
simulated = APIRouter()


@router.get("/v1/payments/{payment_id}", tags=["payments"])
def get_payment(
    payment_id: str,
    caller: Caller = Depends(Allowed(Role.KIOSK)),
    store: Store = Depends(store_of),
) -> dict:
    """A payment of one of this kiosk's redemptions."""
    conn = store.db.connection()
    payment = store.payments.get(conn, payment_id)
    try:
        store.redemptions.get(caller.name, payment.txn_id)
    except NotFound:
        raise NotFound(
            "unknown_payment", f"no payment {shown(payment_id)} for kiosk {caller.name}"
        ) from None
    return payment.view()


@simulated.post("/v1/payments/{payment_id}/simulate-paid", tags=["payments"])
def simulate_paid(
    payment_id: str, _: Caller = Depends(Public()), store: Store = Depends(store_of)
) -> dict:
    """The simulated provider's 'member paid' callback: only on a server started with the
    simulated provider (`serve --demo`); anyone may call it, so never in production."""
    body = json.dumps({"payment_id": payment_id}).encode()
    with store.db.transaction() as conn:
        store.redemptions.sweep(conn)
        return store.payments.notified(conn, {}, body).view()


@simulated.get("/pay/{payment_id}", response_class=HTMLResponse, include_in_schema=False)
def pay_page(
    payment_id: str, _: Caller = Depends(Public()), store: Store = Depends(store_of)
) -> str:
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
