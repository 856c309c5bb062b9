"""A walk through the member screens in the real app, and what is visible on each: used by
the touch-target and the English tests (tests/kiosk/ui/test_screen_rules.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from kivy.uix.button import Button
from kivy.uix.label import Label
from kivy.uix.widget import Widget

from kiosk.services.session import Screen
from kiosk.services.txn_steps import Outcome
from storeserver import members

from .harness import UiDriver


def code_for(server, member_id: str) -> str:
    with server.store.db.transaction() as conn:
        issued = members.issue_code(server.store.ledger, conn, server.store.signing_key, member_id)
    return issued["code"]


def shown(widget: Widget, root: Widget) -> bool:
    """Drawn with some opacity: the widget and every parent up to ``root``."""
    w: Widget | None = widget
    while w is not None:
        if w.opacity <= 0:
            return False
        if w is root:
            return True
        w = w.parent
    return True  # not under root (a popup on the window): its own chain decides


def ids_of(root: Widget) -> dict[int, str]:
    """Widget -> its kv id (kv keeps ids as weak proxies: unwrapped here)."""
    out = {}
    for name, proxy in getattr(root, "ids", {}).items():
        ref = getattr(proxy, "__ref__", None)
        out[id(ref() if callable(ref) else proxy)] = name
    return out


def name_of(widget: Widget, names: dict[int, str]) -> str:
    return names.get(id(widget)) or f"{type(widget).__name__}({widget.text[:24]!r})"


def visible_buttons(root: Widget) -> list[Button]:
    return [w for w in root.walk(restrict=True) if isinstance(w, Button) and shown(w, root)]


def visible_texts(root: Widget) -> list[tuple[Widget, str]]:
    return [
        (w, w.text)
        for w in root.walk(restrict=True)
        if isinstance(w, Label) and w.text and shown(w, root)
    ]


def member_walk(ui: UiDriver, core, server, *, english: bool = False) -> Iterator[str]:
    """Attract -> member -> catalog -> confirm -> payment -> (cancel) result -> member ->
    wheel -> odds panel. Yields the name of each stop once it is shown and laid out;
    ``ui.screen`` (or, for "odds", the wheel's ``odds_panel``) is what to look at."""
    session = ui.app.session
    deadline = time.monotonic() + 10
    while core.catalog is None or "LUCKY" not in core.wheels:
        assert time.monotonic() < deadline, "no catalog or wheel from the store server"
        ui.pump(0.05)
    ui.wait_shown("attract")
    if english:
        ui.tap("language")
        assert ui.app.tr.language == "en"
    yield "attract"
    ui.scan(code_for(server, "M0002"))
    ui.wait_shown("member")
    yield "member"
    ui.tap("catalog_button")
    ui.wait_shown("catalog")
    yield "catalog"
    ui.tap(ui.screen.item_button("GIFT-EARBUDS"))  # points + cash: a payment step
    ui.wait_shown("confirm")
    yield "confirm"
    ui.tap("confirm_button")
    ui.wait_shown("payment")
    ui.wait(lambda: ui.widget("qr").opacity == 1, what="the payment QR")
    ui.pump(0.1)
    yield "payment"
    ui.tap("cancel_button")
    ui.wait_shown("result")
    ui.wait(ui.settled, what="the cancelled purchase")
    assert session.state.result.outcome is Outcome.VOIDED
    ui.pump(0.1)
    yield "result"
    ui.tap("done_button")
    ui.wait_shown("member")
    ui.tap("wheel_button")
    ui.wait_shown("wheel")
    ui.wait(lambda: not ui.widget("odds_button").disabled, what="the wheel's segments")
    yield "wheel"
    ui.tap("odds_button")
    ui.pump(0.3)  # the panel opens with an animation
    yield "odds"
    ui.screen.odds_panel.dismiss()
    ui.pump(0.3)
    ui.tap("back_button")
    ui.wait(lambda: session.state.screen is Screen.MEMBER, what="back on the member screen")
