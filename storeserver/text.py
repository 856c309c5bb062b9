"""Text a person typed that the server stores and shows again (member and staff names).

Control and format characters are refused: a bidi override (U+202E) shown on a staff screen or
a receipt turns "Alice" into what the sender chose, zero-width characters make two names look
alike, and control characters break logs and receipts. Unicode categories Cc (controls, incl.
tab and newline), Cf (format: U+200B-U+200F, U+202A-U+202E, U+2066-U+2069, U+FEFF...), and the
line and paragraph separators Zl and Zp.
"""

from __future__ import annotations

import unicodedata

REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def hidden_character(text: str) -> str | None:
    """The first character of ``text`` that may not be stored in a name, as U+XXXX, or None."""
    for ch in text:
        if unicodedata.category(ch) in REFUSED_CATEGORIES:
            return f"U+{ord(ch):04X}"
    return None


def check_plain(text: str, what: str = "name") -> str:
    """``text`` unchanged, or ValueError saying which character to remove."""
    found = hidden_character(text)
    if found is not None:
        raise ValueError(
            f"{what} contains the control or formatting character {found} "
            "(e.g. a bidi override or zero-width space): retype it as plain text"
        )
    return text
