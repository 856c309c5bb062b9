"""Payments: the simulated provider only when asked for, no provider refuses a cash part, and
pay links that a request's Host header cannot change."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from storeserver.errors import ApiError
from storeserver.payments import (
    BadNotification,
    PaymentNotification,
    SimulatedPaymentProvider,
)
from storeserver.runner import ServerThread
from storeserver.store import Store

from .conftest import KIOSK, Client, db_snapshot, enroll
from .test_redemptions import redeem

EARBUDS = {"member": "M0003", "sku": "GIFT-EARBUDS", "compartment": 4, "points": 2000}


@pytest.fixture
def production(store, clock) -> Iterator[ServerThread]:
    """The same database served by a store with no payment provider (`provider = "none"`)."""
    s = Store(store.db.path, clock=clock)
    with ServerThread(s) as srv:
        yield srv
    s.close()


def test_without_the_simulated_provider_nobody_can_mark_a_payment_paid(kiosk, store, production):
    _, resp = redeem(kiosk, **EARBUDS, cash_cents=4900)
    payment = resp.json()["payment"]
    before = db_snapshot(store)
    anon = Client(production.url, None)
    paid = anon.post(f"/v1/payments/{payment['id']}/simulate-paid")
    assert paid.status_code == 404 and set(paid.json()) == {"error", "message"}
    page = anon.get(f"/pay/{payment['id']}")
    assert page.status_code == 404 and page.json()["error"] == "not_found"
    assert db_snapshot(store) == before
    assert store.payments.get(store.db.connection(), payment["id"]).status == "pending"


def test_a_store_without_a_provider_refuses_a_cash_part_and_holds_nothing(store, production):
    kiosk = enroll(production, KIOSK)
    before = db_snapshot(store)
    _, resp = redeem(kiosk, **EARBUDS, cash_cents=4900)
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"] == "payments_unavailable"
    assert "[payments] provider" in resp.json()["message"]
    after = db_snapshot(store)
    # only the member's resolve (its session and nonce) left a trace: nothing held or paid
    assert {t for t in before if before[t] != after[t]} <= {"member_sessions", "seen_nonces"}
    _, points_only = redeem(kiosk)  # points alone still work
    assert points_only.status_code == 200, points_only.text


def test_a_forged_host_header_does_not_change_the_pay_url(kiosk, server):
    _, resp = redeem(kiosk, **EARBUDS, cash_cents=4900, headers={"Host": "pay.evil.example"})
    payment = resp.json()["payment"]
    assert payment["pay_url"] == f"{server.url}/pay/{payment['id']}"


def test_the_configured_public_url_makes_the_pay_url(kiosk, store):
    store.settings.public_url = "https://store.example.com"
    _, resp = redeem(kiosk, **EARBUDS, cash_cents=4900, headers={"Host": "pay.evil.example"})
    payment = resp.json()["payment"]
    assert payment["pay_url"] == f"https://store.example.com/pay/{payment['id']}"


def test_a_simulated_notification_names_its_payment():
    provider = SimulatedPaymentProvider()
    assert provider.verify_notification({}, b'{"payment_id": "pay_1"}').payment_id == "pay_1"
    for body in (b"", b"[]", b'{"payment_id": 7}', b"{"):
        with pytest.raises(BadNotification) as refused:
            provider.verify_notification({}, body)
        assert refused.value.status == 401 and refused.value.code == "bad_notification"


class ReportsAnotherAmount(SimulatedPaymentProvider):
    def verify_notification(self, headers, body) -> PaymentNotification:
        return PaymentNotification(super().verify_notification(headers, body).payment_id, 1)


def test_a_notification_for_another_amount_is_refused(kiosk, store):
    _, resp = redeem(kiosk, **EARBUDS, cash_cents=4900)
    payment_id = resp.json()["payment"]["id"]
    store.payments.provider = ReportsAnotherAmount()
    before = db_snapshot(store)
    with pytest.raises(ApiError) as refused, store.db.transaction() as conn:
        store.payments.notified(conn, {}, f'{{"payment_id": "{payment_id}"}}'.encode())
    assert refused.value.code == "amount_mismatch" and "4900" in refused.value.message
    assert db_snapshot(store) == before
