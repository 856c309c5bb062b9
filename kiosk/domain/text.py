"""A text for a person, named by its key in ``kiosk/locale/*.toml`` with the fields it needs.

The domain reads no files, so it says *which* text (``Text("offline.limit_left", {"left":
200})``) and ``kiosk.i18n.render`` (a service) or the ``Translator`` (a screen) turns it into
Chinese and English. Errors a person reads do the same with ``key`` and ``fields``
(``kiosk.errors.UserFacingError``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Text:
    """``key`` in the text catalog and the ``{fields}`` its zh and en name."""

    key: str
    fields: dict[str, object] = field(default_factory=dict, hash=False)  # hashed by key
