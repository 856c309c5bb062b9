"""Sync alerts reach staff: an offline redemption the server called a conflict, or a refused
event, is told on the staff screen after sign-in and leaves the kiosk's journal only when a
staff member marks it handled (kiosk/services/sync_alerts.py, the staff flow)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kiosk.i18n import Translator
from kiosk.ports import EventResult
from kiosk.services.staff_session import StaffStep
from kiosk.services.sync_alerts import SyncAlertDesk, mask_member

from .rig import KioskSide
from .test_restock import CATALOG, FakeClock
from .test_staff_session import BADGE, Rig

OFFLINE = {"txn_id": "0f1e2d3c-aaaa", "member_id": "M000123", "sku": "GIFT-MUG", "points": 800,
           "compartment": 1}  # fmt: skip


def park(kiosk: KioskSide, kind: str, payload: dict, status: str, reason: str) -> str:
    """Queue an event and settle it as the server would have answered it."""
    event_id = kiosk.outbox.add(kind, payload).event_id
    report = kiosk.outbox.settle([EventResult(event_id, status, reason, "server words")])
    assert report is not None
    assert [a.alert_id for a in kiosk.outbox.alerts()][-1] == event_id
    return event_id


def desk_of(kiosk: KioskSide) -> SyncAlertDesk:
    outbox = kiosk.outbox
    items = {i.sku: i for i in CATALOG.items}
    return SyncAlertDesk(outbox.alerts, outbox.acknowledge, Translator("zh"), lambda: items)


@pytest.fixture
def kiosk(tmp_path) -> Iterator[KioskSide]:
    k = KioskSide(tmp_path / "kiosk", "http://127.0.0.1:1")
    yield k
    k.close()


@pytest.fixture
def rig(kiosk) -> Iterator[Rig]:
    r = Rig(kiosk, FakeClock(), alerts=desk_of(kiosk))
    yield r
    r.settle()
    r.flow._leave()
    r.join()


def test_member_ids_are_masked_but_told_apart():
    assert mask_member("M000123") == "M0***23"
    assert mask_member("M000124") != mask_member("M000123")
    assert mask_member("M12") == "M**"


def test_an_offline_conflict_is_told_with_what_was_taken_and_the_reference(kiosk):
    park(kiosk, "offline_redemption", OFFLINE, "conflict", "insufficient_points")
    (notice,) = desk_of(kiosk).notices()
    assert notice.status == "conflict"
    zh, en = notice.text.zh, notice.text.en
    for text in (zh, en):
        assert "M0***23" in text and "800" in text and "insufficient_points" in text
        assert "0f1e2d3c" in text and "M000123" not in text
    assert "保温杯" in zh and "1 号柜" in zh
    assert "Thermal mug" in en and "compartment 1" in en


def test_a_rejected_count_names_its_kind_in_both_languages(kiosk):
    park(
        kiosk, "inventory", {"compartment": 2, "sku": "GIFT-MUG", "count": 3}, "rejected", "bad_sku"
    )
    (notice,) = desk_of(kiosk).notices()
    assert "库存盘点" in notice.text.zh and "stock count" in notice.text.en
    assert "bad_sku" in notice.text.zh and "bad_sku" in notice.text.en


def test_staff_see_alerts_after_sign_in_and_mark_them_handled_one_by_one(rig, kiosk):
    first = park(kiosk, "offline_redemption", OFFLINE, "conflict", "insufficient_points")
    second = park(kiosk, "inventory", {"compartment": 2, "sku": "GIFT-MUG", "count": 3}, "rejected",
                  "bad_sku")  # fmt: skip
    state = rig.sign_in()
    assert state.step is StaffStep.RESTOCK and len(state.alerts) == 2
    assert "2 条同步提醒" in state.message.zh and state.alert_shown is None

    rig.flow.alerts_tap()  # read the oldest
    state = rig.state
    assert state.alert_shown == first and state.message.zh.startswith("提醒 1/2：")
    assert [a.alert_id for a in kiosk.outbox.alerts()] == [first, second]  # only read

    rig.flow.alerts_tap()  # mark it handled: the next one is shown
    state = rig.settle()
    assert state.alert_shown == second and state.message.en.startswith("Alert 1 of 1: ")
    assert [a.alert_id for a in kiosk.outbox.alerts()] == [second]

    rig.flow.alerts_tap()
    state = rig.settle()
    assert state.alerts == () and state.alert_shown is None
    assert state.message.zh == "没有待处理的同步提醒"
    assert kiosk.outbox.alerts() == []
    rig.flow.alerts_tap()  # nothing left: a tap does nothing
    assert rig.state.message.zh == "没有待处理的同步提醒"


def test_handled_alerts_stay_handled_after_a_restart(tmp_path):
    kiosk = KioskSide(tmp_path / "kiosk", "http://127.0.0.1:1")
    try:
        done = park(kiosk, "offline_redemption", OFFLINE, "conflict", "insufficient_points")
        kept = park(kiosk, "fault", {"what": "x"}, "rejected", "bad_payload")
        assert desk_of(kiosk).acknowledge(done, "S0001")
    finally:
        kiosk.close()
    again = KioskSide(tmp_path / "kiosk", "http://127.0.0.1:1")
    try:
        assert [n.alert_id for n in desk_of(again).notices()] == [kept]
    finally:
        again.close()


def test_without_alerts_the_welcome_says_nothing_of_them(rig):
    state = rig.sign_in()
    assert state.alerts == () and "提醒" not in state.message.zh
    rig.flow.alerts_tap()
    assert rig.state.alert_shown is None


def test_before_sign_in_alerts_are_not_shown(rig, kiosk):
    park(kiosk, "offline_redemption", OFFLINE, "conflict", "insufficient_points")
    rig.flow.begin(BADGE)
    rig.flow.alerts_tap()
    assert rig.state.step is StaffStep.PIN and rig.state.alerts == ()


def test_mark_handled_is_only_for_the_alert_on_screen(rig, kiosk):
    """Staff read an alert, then select a compartment (another message): the next tap on the
    button shows the alert again instead of removing one nobody is reading."""
    first = park(kiosk, "offline_redemption", OFFLINE, "conflict", "insufficient_points")
    rig.sign_in()
    rig.flow.alerts_tap()
    assert rig.state.alert_shown == first
    rig.flow.select(2)
    assert rig.state.alert_shown is None and "2" in rig.state.message.zh
    rig.flow.alerts_tap()
    assert rig.state.alert_shown == first and rig.state.message.zh.startswith("提醒 1/1")
    assert [a.alert_id for a in kiosk.outbox.alerts()] == [first]


def test_an_upload_the_server_kept_failing_on_says_not_to_charge_by_hand(kiosk):
    event_id = kiosk.outbox.add("offline_redemption", OFFLINE).event_id
    assert kiosk.outbox.park(event_id, "failed", "http_500", "boom")
    (notice,) = desk_of(kiosk).notices()
    assert "多次处理失败" in notice.text.zh and "kept failing" in notice.text.en
    assert "Do not charge by hand" in notice.text.en and "refused" not in notice.text.en
