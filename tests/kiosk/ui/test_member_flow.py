"""Member, catalog and confirm screens in the real app, offscreen, against the real store server.

The result screen is another screen's business: after confirm these tests look at the
session's state, the server's ledger and the simulated locker instead.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import time

import pytest
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.image import Image as KivyImage
from PIL import Image as PilImage

from kiosk.domain.catalog import Affordability, Unaffordable
from kiosk.screens import catalog as catalog_screen
from kiosk.services.session import Screen
from kiosk.services.txn_steps import Outcome
from storeserver import members

from .harness import drive

MINE = {
    Screen.ATTRACT: "attract:AttractScreen",
    Screen.MEMBER: "member:MemberScreen",
    Screen.CATALOG: "catalog:CatalogScreen",
    Screen.CONFIRM: "confirm:ConfirmScreen",
}
SKUS = {"GIFT-MUG", "GIFT-TOTE", "GIFT-TEA", "GIFT-EARBUDS", "GIFT-UMBRELLA", "CPN-10"}


def code_for(server, member_id: str) -> str:
    with server.store.db.transaction() as conn:
        issued = members.issue_code(server.store.ledger, conn, server.store.signing_key, member_id)
    return issued["code"]


@pytest.fixture
def ui(ui_core):
    deadline = time.monotonic() + 10
    while ui_core.catalog is None:  # the sync worker fetches it right after start
        assert time.monotonic() < deadline, "no catalog from the store server"
        time.sleep(0.02)
    with drive(ui_core, screens=MINE) as driver:
        yield driver


def on_screen(ui, name: str, timeout_s: float = 10.0) -> None:
    """``wait_screen`` plus the end of the screen change: a ScreenManager drops touches while
    its transition (even NoTransition) is still active, for a frame or two."""
    ui.wait_shown(name, timeout_s)


def sign_in(ui, server, member_id: str) -> None:
    ui.scan(code_for(server, member_id))
    on_screen(ui, "member")


def to_confirm(ui, server, member_id: str = "M0002", sku: str = "GIFT-MUG") -> None:
    sign_in(ui, server, member_id)
    ui.tap("catalog_button")
    on_screen(ui, "catalog")
    ui.tap(ui.screen.item_button(sku))
    on_screen(ui, "confirm")


def test_member_screen_shows_balance_tier_expiring_and_history(ui, ui_server, tmp_path):
    sign_in(ui, ui_server, "M0002")
    tr, today = ui.app.tr, ui_server.store.today()
    assert ui.text("balance") == "2,700"
    assert ui.text("name") == "李*，您好"
    assert ui.text("tier") == "银卡会员"
    assert "金卡会员" in ui.text("next_tier")
    assert 0 < ui.widget("tier_progress").value < 1
    expiring = ui.text("expiring").splitlines()
    assert expiring[0] == f"600 积分 · {tr.date(today + dt.timedelta(days=5))} 到期"
    assert tr.date(today + dt.timedelta(days=25)) in expiring[1]
    assert ui.text("stored_value") == "储值余额 ¥0.00"
    history = ui.text("history").splitlines()
    assert len(history) == 3 and all("+" in line and "消费积分" in line for line in history)
    assert ui.text("idle") == "0:30 后自动退出"
    assert ui.text("offline") == "" and not ui.widget("wheel_button").disabled
    assert ui.screenshot(tmp_path / "member.png").stat().st_size > 1000


def test_catalog_lists_items_affordable_first(ui, ui_server, tmp_path):
    sign_in(ui, ui_server, "M0002")
    ui.tap("catalog_button")
    on_screen(ui, "catalog")
    screen = ui.screen
    assert set(screen._cards) == SKUS
    mug = screen.item_button("GIFT-MUG")
    assert not mug.disabled and mug.price == "800 积分" and mug.stock == "剩余 3 件"
    assert screen.item_button("GIFT-EARBUDS").price == "2,000 积分 + ¥49.00"
    cards = list(reversed(screen.ids.item_grid.children))  # GridLayout keeps children last-first
    oks = [c.ok for c in cards]
    assert oks == sorted(oks, reverse=True)
    assert ui.text("balance") == "您有 2,700 积分"
    assert ui.screenshot(tmp_path / "catalog.png").stat().st_size > 1000
    ui.tap("back_button")
    on_screen(ui, "member")


def test_items_over_the_balance_are_disabled_with_the_reason(ui, ui_server, tmp_path):
    sign_in(ui, ui_server, "M0005")  # 80 points
    ui.tap("catalog_button")
    on_screen(ui, "catalog")
    mug = ui.screen.item_button("GIFT-MUG")
    assert mug.disabled and not mug.ok
    assert mug.status == "还差 720 积分"
    assert ui.screen.item_button("GIFT-TOTE").status == "还差 220 积分"
    assert all(card.disabled for card in ui.screen._cards.values())
    ui.tap(mug)
    ui.pump(0.1)
    assert ui.current == "catalog" and ui.app.session.state.screen is Screen.CATALOG
    assert ui.app.session.state.selected is None
    ui.app.tr.toggle()
    ui.pump(0.05)
    assert ui.screen.item_button("GIFT-MUG").status == "720 more points needed"
    assert ui.screenshot(tmp_path / "catalog-short.png").stat().st_size > 1000


def test_out_of_stock_and_offline_cash_items_say_why(ui, ui_server):
    sign_in(ui, ui_server, "M0004")
    ui.tap("catalog_button")
    on_screen(ui, "catalog")
    state = ui.app.session.state
    items = {a.item.sku: a.item for a in state.offer}
    offer = (
        Affordability(items["GIFT-TOTE"], None),
        Affordability(dataclasses.replace(items["GIFT-MUG"], stock=0), Unaffordable.OUT_OF_STOCK),
        Affordability(items["GIFT-EARBUDS"], Unaffordable.CASH_NEEDS_ONLINE),
    )
    ui.screen.show(dataclasses.replace(state, offer=offer, online=False))
    assert ui.screen.item_button("GIFT-MUG").status == "已兑完"
    assert ui.screen.item_button("GIFT-EARBUDS").status == "离线时不支持积分加现金"
    assert not ui.screen.item_button("GIFT-TOTE").disabled
    assert ui.text("offline") != ""


def test_catalog_cards_show_the_cached_picture_or_the_initial_tile(ui, ui_server, ui_core,
                                                                    tmp_path):  # fmt: skip
    """The sync worker fetched the demo's pictures from the store server into the kiosk's
    cache; the tote has none on the server, so its card shows its initial on a colour."""
    with ui_server.store.db.transaction() as conn:
        conn.execute("UPDATE items SET picture = NULL WHERE sku = 'GIFT-TOTE'")
    cache, served = ui_core.pictures, ui_server.store.pictures.folder
    assert cache.folder == ui_core.config.kiosk.state_dir / "pictures"

    def synced() -> bool:
        items = {i.sku: i for i in ui_core.catalog.items}
        return items["GIFT-TOTE"].picture is None and all(
            cache.sha256(name) == hashlib.sha256((served / name).read_bytes()).hexdigest()
            for name in ("mug.png", "earbuds.png", "coupon-10.png")
        )

    ui.wait(synced, 10.0, "the catalog without the tote's picture, and the pictures cached")
    sign_in(ui, ui_server, "M0002")
    ui.tap("catalog_button")
    on_screen(ui, "catalog")
    shot = PilImage.open(ui.screenshot(tmp_path / "catalog-pictures.png")).convert("RGB")
    assert shot.size == (800, 480)

    def picture_of(card) -> KivyImage:
        return next(w for w in card.walk() if isinstance(w, KivyImage))

    def pixel(widget, fx: float, fy: float) -> tuple[int, int, int]:
        x, y = widget.to_window(widget.x + fx * widget.width, widget.y + fy * widget.height)
        return shot.getpixel((int(x), int(shot.height - y)))

    def near(a, b, tolerance=14) -> bool:
        return all(abs(p - q) <= tolerance for p, q in zip(a, b, strict=True))

    mug = ui.screen.item_button("GIFT-MUG")
    assert mug.picture == str(cache.folder / "mug.png")
    image = picture_of(mug)
    assert image.source == mug.picture and image.opacity == 1
    assert image.texture is not None and tuple(image.texture.size) == (240, 240)
    assert mug.initial == "保" and not any(
        getattr(w, "text", None) == "保" for w in mug.walk()
    )  # the initial is not drawn over the picture
    drawn = PilImage.open(cache.folder / "mug.png").convert("RGBA").getpixel((120, 120))[:3]
    assert near(pixel(image, 0.5, 0.5), drawn), (pixel(image, 0.5, 0.5), drawn)

    tote = ui.screen.item_button("GIFT-TOTE")
    assert tote.picture == "" and tote.initial == "帆"
    assert picture_of(tote).opacity == 0
    assert any(getattr(w, "text", None) == "帆" for w in tote.walk())
    tile = next(w for w in tote.walk() if isinstance(w, FloatLayout))
    expected = tuple(round(255 * c) for c in catalog_screen.tile_color("GIFT-TOTE")[:3])
    assert near(pixel(tile, 0.12, 0.5), expected), (pixel(tile, 0.12, 0.5), expected)


def test_points_and_cash_shows_both_on_confirm(ui, ui_server):
    to_confirm(ui, ui_server, sku="GIFT-EARBUDS")
    assert ui.text("points") == "使用 2,000 积分"
    assert ui.text("cash").startswith("另需付款 ¥49.00")
    assert ui.text("balance_after") == "兑换后剩余 700 积分"
    assert ui.text("where") == "礼品将从 4 号柜门取出"
    assert ui.text("confirm_button") == "确认并付款"


def test_confirm_shows_the_spend_and_confirm_redeems(ui, ui_server, ui_core, tmp_path):
    to_confirm(ui, ui_server)
    assert ui.text("summary") == "兑换：保温杯"
    assert ui.text("points") == "使用 800 积分"
    assert ui.text("balance_after") == "兑换后剩余 1,900 积分"
    assert ui.text("where") == "礼品将从 1 号柜门取出"
    assert ui.text("cash") == ""
    assert ui.screenshot(tmp_path / "confirm.png").stat().st_size > 1000
    ui.tap("confirm_button")
    assert ui.screen.busy and ui.widget("confirm_button").disabled  # spinner, no second go
    session = ui.app.session
    ui.wait(lambda: session.state.result is not None and not session.state.busy,
            what="the redemption")  # fmt: skip
    assert session.state.result.outcome is Outcome.DISPENSED
    assert ui_server.balance("M0002") == 1900
    assert ui_core.locker.sim.door(1).pulses == 1


def test_a_double_tap_on_confirm_starts_one_transaction(ui, ui_server, ui_core):
    to_confirm(ui, ui_server)
    ui.tap("confirm_button", twice=True)
    session = ui.app.session
    ui.wait(lambda: session.state.result is not None and not session.state.busy,
            what="the redemption")  # fmt: skip
    ui.tap("confirm_button", twice=True)  # still on screen here (no result screen built)
    ui.pump(0.2)
    assert ui_server.balance("M0002") == 1900
    assert ui_core.locker.sim.door(1).pulses == 1
    assert len(ui_server.redemptions()) == 1


def test_cancel_on_confirm_goes_back_to_the_catalog(ui, ui_server, ui_core):
    to_confirm(ui, ui_server, sku="CPN-10")
    assert ui.text("where") == "代金券将由下方打印机打印"
    ui.tap("cancel_button")
    on_screen(ui, "catalog")
    assert ui_server.balance("M0002") == 2700


def test_idle_countdown_then_logout_to_attract(ui, ui_server):
    sign_in(ui, ui_server, "M0002")
    session = ui.app.session
    offset, base = [0.0], time.monotonic()
    session.clock = lambda: base + offset[0]  # frozen: a loaded machine's delays do not count
    session.touch()
    offset[0] = 20.5
    session.tick()
    ui.pump(0.05)
    assert ui.text("idle") == "0:10 后自动退出"
    offset[0] = 31
    session.tick()
    on_screen(ui, "attract")
    assert session.state.member is None


def test_language_switch_changes_the_member_texts(ui, ui_server, tmp_path):
    sign_in(ui, ui_server, "M0002")
    before = {i: ui.text(i) for i in ("name", "tier", "expiring", "history", "logout_button")}
    ui.tap("language")
    assert ui.app.tr.language == "en"
    assert ui.text("name") == "Hello, 李*"
    assert ui.text("tier") == "Silver member"
    assert ui.text("next_tier").endswith("more points to Gold")
    assert ui.text("logout_button") == "Sign out"
    assert ui.text("catalog_button") == "Redeem gifts"
    assert ui.text("idle").startswith("Signing out in")
    day = ui_server.store.today() + dt.timedelta(days=5)
    assert ui.text("expiring").splitlines()[0] == f"600 points on {ui.app.tr.date(day)}"
    assert all(ui.text(i) != text for i, text in before.items())
    assert ui.screenshot(tmp_path / "member-en.png").stat().st_size > 1000


def test_a_cached_view_is_marked_with_its_age(ui, ui_server, tmp_path):
    sign_in(ui, ui_server, "M0002")  # online: the view goes into the offline cache
    ui.tap("logout_button")
    on_screen(ui, "attract")
    code = code_for(ui_server, "M0002")
    ui_server.thread.stop()  # connection refused from now on
    ui.scan(code)
    on_screen(ui, "member", timeout_s=20)
    assert ui.app.session.state.member.online is False
    assert ui.text("offline") == "网络中断：资料更新于刚刚"
    assert ui.text("balance") == "2,700"
    assert ui.screenshot(tmp_path / "member-cached.png").stat().st_size > 1000


def test_a_code_scanned_on_the_member_screen_counts_down_and_can_be_cancelled(ui, ui_core,
                                                                               ui_server):  # fmt: skip
    """The member screen shows the same lookup countdown and cancel as the attract screen;
    a cancelled lookup leaves the member signed in, and its late answer is ignored."""
    from pathlib import Path

    from kiosk.services.identify import MemberIdentifier
    from kiosk.sync.client import StoreServerClient
    from tests.kiosk.test_member_lookup import SilentServer

    sign_in(ui, ui_server, "M0002")
    tr = ui.app.tr
    row = ui.widget("lookup_row")
    assert row.height == 0 and ui.widget("cancel_lookup").disabled
    key = Path(ui_core.config.server.public_key_file).read_text().strip()
    with SilentServer() as silent:
        client = StoreServerClient(silent.url, token="t", connect_timeout_s=0.5,
                                   read_timeout_s=30.0)  # fmt: skip
        ui.app.session.identifier = MemberIdentifier(client, ui_core.journal, key,
                                                     now=time.time, cache_hours=24)  # fmt: skip
        ui.app.session.lookup_timeout_s = 30.0
        ui.scan(code_for(ui_server, "M0003"))  # someone else's code, over a silent network
        ui.wait(lambda: row.height > 0, what="the lookup row")
        assert ui.current == "member" and row.opacity == 1
        shown = ui.text("lookup_hint")
        assert shown in {tr("member.looking_up", countdown=f"0:{s}") for s in ("30", "29", "28")}
        ui.tap("cancel_lookup")
        ui.wait(lambda: row.height == 0, what="the lookup row gone")
        assert ui.current == "member" and ui.widget("cancel_lookup").disabled
        assert ui.text("error") == tr("session.lookup_cancelled")
        assert ui.app.session.state.member.view.member_id == "M0002"  # still signed in
        client.close()
