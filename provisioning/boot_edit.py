"""Keyed edits of the Pi's boot files and Kivy's config.ini, as pure text -> text functions.

Each function returns its input unchanged when it already says what is wanted, so "apply,
then check again" finds nothing to do and a second run changes nothing. Everything that is
not ours is kept: other config.txt lines, other kernel arguments (and their order), other
Kivy settings.

- config.txt: one managed block (``# BEGIN kiosk-provision`` ... ``# END kiosk-provision``)
  that is replaced whole; appended at the end the first time.
- cmdline.txt: one line of space-separated kernel arguments; arguments are keyed (``consoleblank``,
  ``video=DSI-1``) and replaced in place, new ones go before a ``--`` (what follows it is init's).
- config.ini (Kivy's): ``key = value`` lines keyed by section and key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from provisioning.target import ProvisionError

BEGIN = "# BEGIN kiosk-provision"
END = "# END kiosk-provision"
SETTINGS_PREFIX = "# kiosk-provision settings:"


def find_block(text: str, where: str) -> tuple[int, int] | None:
    """(first, last) line index of the managed block in ``text``, or None when it has none."""
    lines = text.splitlines()
    begins = [i for i, line in enumerate(lines) if line.startswith(BEGIN)]
    ends = [i for i, line in enumerate(lines) if line.startswith(END)]
    if not begins and not ends:
        return None
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise ProvisionError(
            f"{where}: the '{BEGIN}' ... '{END}' block is broken ({len(begins)} BEGIN, "
            f"{len(ends)} END line(s)): remove what is left of it by hand, then run again"
        )
    return begins[0], ends[0]


def block_lines(text: str, where: str) -> list[str]:
    """The managed block's lines (markers included), or [] when there is none."""
    span = find_block(text, where)
    return [] if span is None else text.splitlines()[span[0] : span[1] + 1]


def with_block(text: str, block: Sequence[str], where: str) -> str:
    """``text`` with its managed block replaced by ``block`` (BEGIN..END lines), or appended."""
    span = find_block(text, where)
    lines = text.splitlines()
    if span is None:
        if lines and lines[-1].strip():
            lines.append("")  # a blank line between the image's settings and ours
        new = [*lines, *block]
    else:
        new = [*lines[: span[0]], *block, *lines[span[1] + 1 :]]
    if new == lines:
        return text
    return "\n".join(new) + "\n"


def _arg_key(arg: str) -> str:
    """``video=DSI-1:800x480@60`` -> ``video=DSI-1``; ``consoleblank=0`` -> ``consoleblank``."""
    name, _, value = arg.partition("=")
    if name == "video" and ":" in value:
        return f"video={value.split(':', 1)[0]}"
    return name


def cmdline_args(text: str, where: str) -> list[str]:
    """The kernel arguments of a cmdline.txt, refusing a file of more than one line."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise ProvisionError(
            f"{where} has {len(lines)} non-empty lines, but the kernel reads exactly one line "
            "of arguments: join them into one line by hand (spaces between), then run again"
        )
    return lines[0].split()


def with_args(text: str, wanted: Sequence[str], drop_keys: Sequence[str], where: str) -> str:
    """cmdline.txt with each ``wanted`` argument set (by key) and ``drop_keys`` removed."""
    args = cmdline_args(text, where)
    by_key = {_arg_key(a): a for a in wanted}
    placed: set[str] = set()
    new: list[str] = []
    for arg in args:
        key = _arg_key(arg)
        if key in by_key and key not in placed:
            new.append(by_key[key])  # in place of the first; later duplicates go
            placed.add(key)
        elif key not in by_key and key not in drop_keys:
            new.append(arg)
    at = new.index("--") if "--" in new else len(new)
    new[at:at] = [a for k, a in by_key.items() if k not in placed]
    return text if new == args else " ".join(new) + "\n"


_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_OPTION = re.compile(r"^\s*([^=:\s][^=:]*?)\s*[=:]")


def with_ini(text: str, values: Mapping[str, Mapping[str, str]]) -> str:
    """An INI file (Kivy's config.ini) with ``values[section][key]`` set; the rest kept."""
    lines = text.splitlines()
    for section, keys in values.items():
        for key, value in keys.items():
            lines = _set_ini(lines, section, key, value)
    return text if lines == text.splitlines() else "\n".join(lines) + "\n"


def _set_ini(lines: list[str], section: str, key: str, value: str) -> list[str]:
    wanted = f"{key} = {value}"
    start = next((i for i, line in enumerate(lines) if _header(line) == section), None)
    if start is None:
        gap = [""] if lines and lines[-1].strip() else []
        return [*lines, *gap, f"[{section}]", wanted]
    end = next((i for i in range(start + 1, len(lines)) if _header(lines[i])), len(lines))
    for i in range(start + 1, end):
        match = _OPTION.match(lines[i])
        if match and match.group(1).lower() == key.lower():
            return lines if lines[i] == wanted else [*lines[:i], wanted, *lines[i + 1 :]]
    last = max((i for i in range(start, end) if lines[i].strip()), default=start)
    return [*lines[: last + 1], wanted, *lines[last + 1 :]]


def _header(line: str) -> str | None:
    match = _SECTION.match(line)
    return match.group(1).strip() if match else None
