"""The member session without Kivy: the real core pieces, synchronous run/post, taps as calls."""

from __future__ import annotations

import pytest

from kiosk.domain.catalog import parse_catalog
from kiosk.errors import Unreachable
from kiosk.services.identify import MemberIdentifier
from kiosk.services.session import MemberSession, Screen
from kiosk.services.txn_steps import Outcome
from storeserver import members


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def session(kiosk, server):
    key = (kiosk.folder / "state" / "server_key.pub").read_text().strip()
    identifier = MemberIdentifier(kiosk.client, kiosk.journal, key, now=__import__("time").time,
                                  cache_hours=24)  # fmt: skip
    catalog = parse_catalog(kiosk.client.catalog())
    clock = Clock()
    s = MemberSession(
        identifier=identifier, engine=kiosk.engine, catalog=lambda: catalog,
        online=kiosk.link.online, post=lambda fn: fn(), run=lambda fn: fn(),
        clock=clock, wheel_info=lambda: kiosk.client.wheel_info("LUCKY"),
        member_wheel_info=lambda member_id, member_session: kiosk.client.wheel_info(
            "LUCKY", member_id, member_session
        ),
    )  # fmt: skip
    s.test_clock = clock
    seen = []
    s.subscribe(seen.append)
    s.seen = seen
    return s


def code_for(server, member_id):
    with server.store.db.transaction() as conn:
        return members.issue_code(server.store.ledger, conn, server.store.signing_key, member_id)[
            "code"
        ]


def test_scan_choose_confirm_redeems_and_shows_the_result(session, server, kiosk):
    session.on_scan(code_for(server, "M0002"))
    assert session.state.screen is Screen.MEMBER and session.state.member.view.balance == 2700
    oks = [a.ok for a in session.state.offer]
    assert len(oks) == 6 and oks == sorted(oks, reverse=True)  # affordable first
    session.show_catalog()
    session.choose("GIFT-MUG")
    assert session.state.screen is Screen.CONFIRM and session.state.compartment == 1
    session.confirm()
    assert session.state.screen is Screen.RESULT and not session.state.busy
    assert session.state.result.outcome is Outcome.DISPENSED
    assert server.balance("M0002") == 1900 and kiosk.pulses(1) == 1
    session.confirm()  # a second tap on a button no longer shown does nothing
    assert kiosk.pulses(1) == 1 and server.balance("M0002") == 1900
    # back on the member screen: the balance left, and the offer follows it
    assert session.state.member.view.balance == 1900
    offer = {a.item.sku: a for a in session.state.offer}
    assert offer["GIFT-MUG"].ok
    assert [a.item.points <= 1900 for a in session.state.offer if a.ok] == [
        True for a in session.state.offer if a.ok
    ]


def test_after_an_offline_redemption_the_next_offline_scan_shows_what_is_left(
    session, server, kiosk, monkeypatch
):
    session.on_scan(code_for(server, "M0002"))  # online: the view is cached on this kiosk
    session.logout()

    def down(_code):
        raise Unreachable("store server at http://127.0.0.1:1 unreachable: connection refused")

    monkeypatch.setattr(kiosk.client, "resolve_member", down)
    kiosk.link.cut()
    session.on_scan(code_for(server, "M0002"))
    assert session.state.member.online is False and session.state.member.view.balance == 2700
    session.show_catalog()
    session.choose("GIFT-TOTE")
    session.confirm()
    assert session.state.result is not None, session.state.error
    assert session.state.result.outcome is Outcome.DISPENSED_UNCONFIRMED
    assert session.state.member.view.balance == 2400
    session.logout()
    session.on_scan(code_for(server, "M0002"))  # still offline: the cached view was kept in step
    assert session.state.member.online is False and session.state.member.view.balance == 2400


def test_disabled_items_cannot_be_chosen(session, server):
    session.on_scan(code_for(server, "M0005"))  # 80 points
    session.show_catalog()
    assert [a.ok for a in session.state.offer] == [False] * 6
    session.choose("GIFT-MUG")
    assert session.state.screen is Screen.CATALOG and session.state.selected is None


def test_idle_countdown_logs_out(session, server):
    session.on_scan(code_for(server, "M0002"))
    session.test_clock.now += 10
    session.tick()
    assert session.state.idle_left_s == pytest.approx(20)
    session.test_clock.now += 21
    session.tick()
    assert session.state.screen is Screen.ATTRACT and session.state.member is None


def test_a_staff_badge_is_routed_to_the_staff_screen(session):
    badge = "LK1.S.S0001.1.99999999999.0123456789abcdef.AAAA"
    session.on_scan(badge)
    assert session.state.screen is Screen.STAFF and session.state.routed_code[1] == badge


def test_a_replayed_code_shows_an_error_and_stays(session, server):
    code = code_for(server, "M0002")
    session.on_scan(code)
    session.logout()
    session.on_scan(code)
    assert session.state.screen is Screen.ATTRACT and session.state.error is not None


def test_wheel_spin_from_the_member_screen(session, server):
    session.on_scan(code_for(server, "M0004"))
    session.show_wheel()
    assert session.state.screen is Screen.WHEEL and session.state.wheel.cost_points == 100
    session.spin()
    assert session.state.result.outcome in (Outcome.ISSUED, Outcome.DISPENSED)
    assert session.state.screen is Screen.WHEEL


def test_maintenance_takes_over_when_idle_and_lets_only_staff_through(session, server):
    from kiosk.domain.receipts import Bilingual

    down = Bilingual("打印机故障", "Printer down")
    session.on_scan(code_for(server, "M0002"))
    session.set_maintenance(down)  # a member is being served: not yet
    assert session.state.screen is Screen.MEMBER
    session.logout()
    assert session.state.screen is Screen.MAINTENANCE
    session.on_scan(code_for(server, "M0003"))
    assert session.state.screen is Screen.MAINTENANCE and session.state.member is None
    session.on_scan("LK1.T.tech-1.1.99999999999.0123456789abcdef.AAAA")
    assert session.state.screen is Screen.DIAGNOSTICS
    session.logout()
    session.set_maintenance(None)
    assert session.state.screen is Screen.ATTRACT


def test_the_wheel_shows_the_members_spins_left_today_and_counts_a_spin(session, server, kiosk):
    session.on_scan(code_for(server, "M0004"))
    session.show_wheel()
    limit = session.state.wheel.daily_limit
    assert session.state.screen is Screen.WHEEL and session.state.wheel.spins_left == limit
    session.spin()
    assert session.state.result is not None and not session.state.busy
    session.back()  # to the member screen, and to the wheel again: asked afresh
    session.show_wheel()
    assert session.state.wheel.spins_left == limit - 1


def test_without_an_answer_the_wheel_keeps_the_synced_info(session, server, kiosk):
    def down(_member_id, _member_session):
        raise Unreachable("store server at http://127.0.0.1:1 unreachable: connection refused")

    session.member_wheel_info = down
    session.on_scan(code_for(server, "M0004"))
    session.show_wheel()
    assert session.state.screen is Screen.WHEEL
    assert session.state.wheel.spins_left is None and session.state.wheel.segments


def test_a_session_the_server_no_longer_takes_asks_the_member_to_scan_again(session, server):
    from kiosk.services.txn_messages import MSG_RESCAN

    session.on_scan(code_for(server, "M0002"))
    assert session.state.member.session  # the resolve opened it
    with server.store.db.transaction() as conn:  # it ran out (or the store ended it)
        conn.execute("DELETE FROM member_sessions")
    session.show_catalog()
    session.choose("GIFT-TOTE")
    session.confirm()
    assert session.state.screen is Screen.MEMBER and session.state.error == MSG_RESCAN
    assert not session.state.busy and server.balance("M0002") == 2700
    session.on_scan(code_for(server, "M0002"))  # the member screen takes the new scan
    session.show_catalog()
    session.choose("GIFT-TOTE")
    session.confirm()
    assert session.state.result.outcome is Outcome.DISPENSED and server.balance("M0002") == 2400
