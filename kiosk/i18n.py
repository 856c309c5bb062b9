"""Chinese and English for everything a member or staff member reads (no Kivy here).

Texts live in ``kiosk/locale/*.toml``, one file per screen or area so screens can be worked
on side by side; every key has a ``zh`` and an ``en`` and both name the same ``{fields}``
(checked when loaded: a missing translation is a start-up error, never an empty label).

    [member.balance]
    zh = "积分 {points}"
    en = "{points} points"

Numbers, money and dates are formatted for the language here too.

Services (Kivy-free) build their member- and staff-facing messages as ``Bilingual`` with
:func:`bilingual`, so a ``UiState`` stays language-free and the screen picks the language;
the screens go through a :class:`Translator`. The domain, which reads no files, names its texts
as a ``Text`` (key and fields) and errors a person reads carry ``key`` and ``fields``
(``UserFacingError``): :func:`render` turns either into both languages. Printed receipts keep their own labels in the
printer templates (``drivers/printer/templates.py``, pinned by golden files).
"""

from __future__ import annotations

import datetime as dt
import logging
import string
import threading
import tomllib
from collections.abc import Callable
from pathlib import Path

from kiosk.domain.receipts import Bilingual
from kiosk.domain.text import Text
from kiosk.errors import ConfigError, UserFacingError

log = logging.getLogger(__name__)

LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGES = ("zh", "en")
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def load_catalog(folder: Path = LOCALE_DIR) -> dict[str, dict[str, str]]:
    """All ``key -> {"zh": ..., "en": ...}`` from the folder's TOML files, checked."""
    catalog: dict[str, dict[str, str]] = {}
    for path in sorted(folder.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"text catalog {path} cannot be read: {exc}") from exc
        for key, entry in _flatten(data).items():
            where = f"{path.name}: [{key}]"
            if key in catalog:
                raise ConfigError(f"{where} is defined twice (also in another locale file)")
            if set(entry) != set(LANGUAGES) or not all(isinstance(v, str) for v in entry.values()):
                raise ConfigError(f"{where} needs exactly zh and en strings, got {sorted(entry)}")
            if _fields(entry["zh"]) != _fields(entry["en"]):
                raise ConfigError(
                    f"{where}: zh names {sorted(_fields(entry['zh']))} but en names "
                    f"{sorted(_fields(entry['en']))}"
                )
            catalog[key] = entry
    return catalog


_default: dict[str, dict[str, str]] | None = None
_default_lock = threading.Lock()


def default_catalog() -> dict[str, dict[str, str]]:
    """The shipped catalog (``kiosk/locale``), read and checked once per process."""
    global _default
    with _default_lock:
        if _default is None:
            _default = load_catalog()
        return _default


def bilingual(key: str, **fields: object) -> Bilingual:
    """Both languages of ``key`` from the shipped catalog: a service's message.

    A key missing from the catalog raises ``ConfigError``; services build their fixed
    messages when imported, so a typo fails at start-up (and in the tests), never on screen.
    """
    entry = default_catalog().get(key)
    if entry is None:
        raise ConfigError(f"no text for key {key!r}: add it to a file in {LOCALE_DIR}")
    return Bilingual(*(_format(key, entry, lang, fields) for lang in LANGUAGES))


def render(text: Text | UserFacingError) -> Bilingual:
    """Both languages of a domain ``Text`` or of an error a person reads."""
    return bilingual(text.key, **text.fields)


def _format(key: str, entry: dict[str, str], language: str, fields: dict[str, object]) -> str:
    try:
        return entry[language].format(**fields)
    except (KeyError, IndexError, ValueError) as exc:
        log.error(
            "text %r in %s needs %s: %s", key, language, sorted(_fields(entry[language])), exc
        )
        return entry[language]


def _flatten(data: dict, prefix: str = "") -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict) and not (set(value) & set(LANGUAGES)):
            out.update(_flatten(value, full + "."))
        elif isinstance(value, dict):
            out[full] = value
    return out


class Translator:
    """The current language and the catalog; listeners hear about a language switch."""

    def __init__(self, language: str = "zh", catalog: dict[str, dict[str, str]] | None = None):
        if language not in LANGUAGES:
            raise ConfigError(f"language {language!r} is not one of {LANGUAGES}")
        self.language = language
        self.catalog = catalog if catalog is not None else load_catalog()
        self._listeners: list[Callable[[str], None]] = []
        self._lock = threading.Lock()

    def __call__(self, key: str, **fields: object) -> str:
        return self.text(key, self.language, **fields)

    def text(self, key: str, language: str, **fields: object) -> str:
        entry = self.catalog.get(key)
        if entry is None:
            log.error("no text for key %r: add it to kiosk/locale", key)
            return key
        return _format(key, entry, language, fields)

    def both(self, key: str, sep: str = " / ", **fields: object) -> str:
        """Chinese first, English second (printed slips; the attract screen, one per line)."""
        return f"{self.text(key, 'zh', **fields)}{sep}{self.text(key, 'en', **fields)}"

    def set_language(self, language: str) -> None:
        if language not in LANGUAGES:
            raise ConfigError(f"language {language!r} is not one of {LANGUAGES}")
        with self._lock:
            self.language = language
            listeners = list(self._listeners)
        for listener in listeners:
            listener(language)

    def toggle(self) -> str:
        self.set_language("en" if self.language == "zh" else "zh")
        return self.language

    def on_change(self, listener: Callable[[str], None]) -> None:
        self._listeners.append(listener)

    # ---- formatting --------------------------------------------------------------------------
    def points(self, value: int) -> str:
        return f"{value:,}"

    def money(self, cents: int) -> str:
        sign = "-" if cents < 0 else ""
        return f"{sign}¥{abs(cents) // 100:,}.{abs(cents) % 100:02d}"

    def date(self, day: dt.date) -> str:
        # not strftime: locale-free; Chinese counts months, English names them
        month = day.month if self.language == "zh" else _MONTHS[day.month - 1]
        return self("common.date", year=day.year, month=month, day=day.day)

    def countdown(self, seconds: float) -> str:
        whole = max(0, int(seconds + 0.999))
        minutes, secs = divmod(whole, 60)
        return f"{minutes}:{secs:02d}"
