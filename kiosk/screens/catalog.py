"""Catalog: the gifts and coupons with picture, name, price (points, plus cash) and stock;
what the member can take comes first (the session sorts ``state.offer``), the rest is greyed
out with the reason (out of stock, N more points needed, cash needs the network).

One card per item in a ScrollView: a kiosk catalog holds tens of items, not thousands, and a
real widget per item lets ``item_button(sku)`` hand tests and the demo tour a tappable widget.

Pictures come from the kiosk's picture cache (``<state_dir>/pictures``, filled by the sync
worker from the store server); an item without one shows its initial on a colour of its own.
"""

from __future__ import annotations

import colorsys
import logging
import zlib

from kivy.properties import BooleanProperty, ListProperty, StringProperty
from kivy.uix.layout import Layout
from kivy.uix.widget import Widget

from kiosk.domain.catalog import Affordability, ItemKind, Unaffordable
from kiosk.screens.base import KioskScreen, TapButton, load_kv
from kiosk.services.ui_state import UiState

log = logging.getLogger(__name__)

_REASON_KEYS = {
    Unaffordable.OUT_OF_STOCK: "catalog.reason.out_of_stock",
    Unaffordable.NOT_ENOUGH_POINTS: "catalog.reason.not_enough_points",
    Unaffordable.CASH_NEEDS_ONLINE: "catalog.reason.cash_needs_online",
}


def tile_color(sku: str) -> list[float]:
    """A calm colour of its own for an item without a picture (stable across restarts)."""
    hue = (zlib.crc32(sku.encode()) % 360) / 360
    return [*colorsys.hsv_to_rgb(hue, 0.45, 0.6), 1.0]


def _layout_now(root: Widget, rounds: int = 5) -> None:
    """Run the layouts Kivy would run at the next frame, top-down, until none is pending."""
    for _ in range(rounds):
        pending = [
            w for w in root.walk() if isinstance(w, Layout) and w._trigger_layout.is_triggered
        ]
        if not pending:
            return
        for layout in pending:
            layout._trigger_layout.cancel()
            layout.do_layout()


class ItemCard(TapButton):
    """One item: picture or initial tile, name, price, stock, and available / why not."""

    sku = StringProperty("")
    title = StringProperty("")
    price = StringProperty("")
    stock = StringProperty("")
    status = StringProperty("")
    ok = BooleanProperty(True)
    picture = StringProperty("")
    initial = StringProperty("")
    tile_rgba = ListProperty([0.3, 0.4, 0.5, 1])


load_kv(__file__)


class CatalogScreen(KioskScreen):
    """Renders ``state.offer`` as cards; a tap on an available card goes to ``session.choose``."""

    def __init__(self, *, pictures=None, **kwargs) -> None:
        # the picture lookup: ``path(name)`` and a ``generation`` that moves as pictures arrive
        self.pictures = pictures
        super().__init__(**kwargs)
        self._cards: dict[str, ItemCard] = {}
        self._built: tuple | None = None  # (offer, language, pictures) the cards show

    def refresh(self, state: UiState) -> None:
        ids, tr = self.ids, self.tr
        who = state.member
        ids.balance.text = (
            "" if who is None else tr("catalog.balance", points=tr.points(who.view.balance))
        )
        ids.offline.text = "" if state.online else tr("common.offline_banner")
        left = state.idle_left_s if state.idle_left_s is not None else self.session.idle_logout_s
        ids.idle.text = tr("common.idle_logout", countdown=tr.countdown(left))
        ids.error.text = "" if state.error is None else (
            state.error.zh if self.lang == "zh" else state.error.en
        )  # fmt: skip
        ids.empty.text = "" if state.offer else tr("catalog.empty")
        pictures = self._pictures()
        generation = pictures.generation if pictures is not None else 0
        if self._built != (state.offer, self.lang, generation):
            self._build(state.offer, generation)

    def _pictures(self):
        """The item pictures (kiosk/storage/pictures.py's cache), if this kiosk has them."""
        return self.pictures

    def _build(self, offer: tuple[Affordability, ...], generation: int) -> None:
        grid = self.ids.item_grid
        grid.clear_widgets()
        self._cards = {}
        for pick in offer:
            card = self._card(pick)
            card.bind(on_release=lambda _w, sku=pick.item.sku: self.choose(sku))
            grid.add_widget(card)
            self._cards[pick.item.sku] = card
        if self._built is None or self._built[:2] != (offer, self.lang):
            self.ids.scroll.scroll_y = 1  # a fresh list starts at the top (a new picture: not)
        self._built = (offer, self.lang, generation)
        log.debug("catalog shows %d items", len(offer))

    def _card(self, pick: Affordability) -> ItemCard:
        tr, item, zh = self.tr, pick.item, self.lang == "zh"
        title = item.name_zh if zh else item.name_en
        points = tr.points(item.points)
        price = (
            tr("catalog.price_cash", points=points, amount=tr.money(item.cash_cents))
            if item.cash_cents
            else tr("catalog.price", points=points)
        )
        if item.stock is None:
            stock = tr(
                "catalog.coupon" if item.kind is ItemKind.COUPON else "catalog.stock_unlimited"
            )
        else:
            stock = tr("catalog.stock", count=item.stock)
        if pick.reason is None:
            status = tr("catalog.available")
        else:
            status = tr(_REASON_KEYS[pick.reason], points=tr.points(pick.points_short))
        pictures = self._pictures()
        picture = pictures.path(item.picture) if pictures is not None else None
        return ItemCard(
            sku=item.sku, title=title, price=price, stock=stock, status=status, ok=pick.ok,
            disabled=not pick.ok, picture=str(picture) if picture else "",
            initial=title[:1].upper(), tile_rgba=tile_color(item.sku),
        )  # fmt: skip

    def item_button(self, sku: str) -> ItemCard:
        """The item's card, scrolled into view so a touch at its centre lands on it."""
        card = self._cards[sku]
        scroll = self.ids.scroll
        _layout_now(self)  # right after show() the cards have no places yet
        scroll.update_from_scroll()
        scroll.scroll_to(card, padding=0, animate=False)
        scroll.update_from_scroll()  # place the content now, not at the next frame
        return card

    # ---- taps ------------------------------------------------------------------------------
    def choose(self, sku: str) -> None:
        self.session.choose(sku)

    def go_back(self) -> None:
        self.session.back()
