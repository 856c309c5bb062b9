"""The demo's simulator strip: a line of key help and status above the kiosk's 800x480, and
the keyboard keys it answers (``kiosk.demo.keys.KeyPanel`` holds what the keys do, without Kivy)."""

from __future__ import annotations

from collections.abc import Callable

from kivy.clock import Clock
from kivy.core.window import Window
from kivy.graphics import Color, Rectangle
from kivy.uix.label import Label


def install_strip(
    app, height_px: int, on_char: Callable[[str], bool], tick: Callable[[], None], period_s: float
) -> Callable[[str], None]:
    """Add the strip to ``app``'s window; returns the function that sets its text.

    ``on_char`` gets each typed character (upper case) and says whether it was a key of the
    simulator; ``tick`` runs every ``period_s`` on the UI thread."""
    # the kiosk keeps its 800x480 at the origin (screens draw their backgrounds there)
    root = app.root
    root.size_hint, root.size, root.pos = (None, None), (800, 480), (0, 0)
    Window.size = (800, 480 + height_px)
    label = Label(font_size=13, size_hint=(None, None), size=(800, height_px), pos=(0, 480),
                  halign="left", valign="middle", text_size=(790, height_px))  # fmt: skip
    with label.canvas.before:
        Color(0.12, 0.12, 0.12, 1)
        Rectangle(pos=label.pos, size=label.size)
    Window.add_widget(label)

    def key_down(_window, _key, _scancode, codepoint, _modifiers) -> bool:
        ch = (codepoint or "").upper()
        return bool(ch) and on_char(ch)

    Window.bind(on_key_down=key_down)
    Clock.schedule_interval(lambda _dt: tick(), period_s)

    def set_text(text: str) -> None:
        label.text = text

    return set_text
