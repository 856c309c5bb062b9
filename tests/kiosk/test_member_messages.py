"""What a member reads when something fails: the catalog's words in both languages, a way
forward and a reference for staff, never an exception's technical (English) text; the
detail goes to the log for the technician.

(Beside tests/kiosk/services/, which other work owns.)
"""

from __future__ import annotations

import logging
import re
from types import SimpleNamespace

import pytest

from kiosk.domain.transaction import TxnState
from kiosk.errors import ConfigError, JournalError, LockerError
from kiosk.i18n import bilingual
from kiosk.services.session import MemberSession, Screen
from kiosk.services.transactions import refusal_message
from kiosk.services.txn_steps import Progress
from kiosk.services.ui_state import UiState

DETAIL = "journal /var/lib/kiosk/state: No space left on device: free space on the SD card"
CJK = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uff00-\uffef]")


class Broken:
    """An identifier or engine that fails the way a full disk or a dead relay would."""

    def __init__(self, exc: Exception, progress_txn: str | None = None) -> None:
        self.exc, self.progress_txn = exc, progress_txn

    def identify(self, payload: str):
        raise self.exc

    def flagged(self) -> dict:
        return {}

    def redeem(self, member, choice, progress):
        if self.progress_txn:
            progress(Progress(self.progress_txn, TxnState.HELD, compartment=1))
        raise self.exc


def session_with(identifier=None, engine=None) -> MemberSession:
    return MemberSession(
        identifier=identifier, engine=engine, catalog=lambda: None, online=lambda: True,
        post=lambda fn: fn(), run=lambda fn: fn(),
    )  # fmt: skip


def assert_member_facing(message, ref: str) -> None:
    assert message == bilingual("session.error", ref=ref)
    assert DETAIL not in message.zh and DETAIL not in message.en
    assert CJK.search(message.zh) and not CJK.search(message.en)
    assert "staff" in message.en and "店员" in message.zh  # what to do


def test_a_fault_during_a_lookup_tells_the_member_to_ask_staff_and_logs_the_detail(caplog):
    session = session_with(identifier=Broken(JournalError(DETAIL)))
    with caplog.at_level(logging.ERROR, "kiosk.services.session"):
        session.on_scan("LK1.M.whatever")
    state = session.state
    assert state.screen is Screen.ATTRACT and not state.busy
    assert_member_facing(state.error, "journal")
    assert DETAIL in caplog.text and "reference journal" in caplog.text


def test_a_fault_during_a_transaction_names_the_transaction(caplog):
    txn_id = "1a2b3c4d-0000-4000-8000-000000000000"
    session = session_with(engine=Broken(LockerError(DETAIL), progress_txn=txn_id))
    item = SimpleNamespace(
        sku="GIFT-MUG", name_zh="保温杯", name_en="Thermal mug", points=800, cash_cents=0,
        coupon_value_cents=0, kind=None,
    )  # fmt: skip
    member = SimpleNamespace(  # identified online: the server's session and the code it came from
        view=SimpleNamespace(member_id="M0002", name_masked="李*", balance=2700),
        session="mst_test",
        code_text="LK1.M.M0002.test",
    )
    session.state = UiState(  # on the confirm screen, as the catalog leaves it
        screen=Screen.CONFIRM, member=member, selected=SimpleNamespace(item=item), compartment=1
    )
    with caplog.at_level(logging.ERROR, "kiosk.services.session"):
        session.confirm()
    state = session.state
    assert state.screen is Screen.RESULT and not state.busy
    assert_member_facing(state.error, "1a2b3c4d")  # kiosk logs 1a2b3c4d finds it
    assert DETAIL in caplog.text and "LockerError" in caplog.text


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("insufficient_points", "points"),
        ("out_of_stock", "out of stock"),
        ("daily_limit_reached", "today's spins"),
        ("price_changed", "price changed"),
    ],
)
def test_a_server_refusal_says_what_it_means_for_the_member(code, words):
    message = refusal_message(code)
    assert words in message.en and "nothing was charged" in message.en
    assert CJK.search(message.zh) and "未扣除积分" in message.zh


def test_an_unknown_refusal_shows_its_code_for_staff_not_the_servers_english():
    message = refusal_message("txn_id_reused")
    assert "txn_id_reused" in message.zh and "txn_id_reused" in message.en
    assert "ask staff" in message.en


def test_a_service_message_with_no_catalog_key_is_an_error_not_a_label():
    with pytest.raises(ConfigError, match=r"no text for key 'session\.nope'"):
        bilingual("session.nope")
