"""What pip installed into a venv, from each ``*.dist-info``: the name, version and wheel tags
(the ``Tag:`` lines of its WHEEL file), and whether it suits a Pi: an aarch64 wheel
(manylinux/musllinux ``*_aarch64``) or pure Python (``py3-none-any``). Anything else, and any
wheel pip built from source (``linux_aarch64``: compiled on this machine), is named.

Which distributions pip built from source, and how long each took, comes from pip's log file
(the root's pip.conf sets ``log``): its ``Building wheel for X (...): started`` and
``...: finished with status 'done'`` lines carry timestamps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.parser import HeaderParser
from enum import Enum
from pathlib import Path


class WheelKind(Enum):
    AARCH64 = "aarch64 wheel"
    PURE = "pure Python"
    BUILT_HERE = "built from source"  # linux_aarch64: no published wheel fitted
    FOREIGN = "another platform"
    UNKNOWN = "no WHEEL file"

    @property
    def fits_a_pi(self) -> bool:
        return self in (WheelKind.AARCH64, WheelKind.PURE)


PUBLISHED_AARCH64 = re.compile(r"^(manylinux\w*|musllinux\w*)_aarch64$")


def classify(tags: list[str]) -> WheelKind:
    """A distribution's kind from its wheel tags (``python-abi-platform``, possibly dotted)."""
    if not tags:
        return WheelKind.UNKNOWN
    platforms = {p for tag in tags for p in tag.split("-")[-1].split(".")}
    if any(PUBLISHED_AARCH64.match(p) for p in platforms):
        return WheelKind.AARCH64
    if platforms == {"any"}:
        return WheelKind.PURE
    if platforms == {"linux_aarch64"}:
        return WheelKind.BUILT_HERE
    return WheelKind.FOREIGN


@dataclass(frozen=True)
class Installed:
    name: str
    version: str
    tags: tuple[str, ...]

    @property
    def kind(self) -> WheelKind:
        return classify(list(self.tags))


def read_dist_info(folder: Path) -> Installed:
    meta = HeaderParser().parsestr((folder / "METADATA").read_text(errors="replace"))
    wheel = folder / "WHEEL"
    tags: tuple[str, ...] = ()
    if wheel.is_file():
        tags = tuple(HeaderParser().parsestr(wheel.read_text()).get_all("Tag") or ())
    return Installed(meta["Name"] or folder.name, meta["Version"] or "?", tags)


def installed_in(venv: Path) -> list[Installed]:
    """Every distribution in a venv's site-packages, by name."""
    folders = venv.glob("lib/python3*/site-packages/*.dist-info")
    return sorted((read_dist_info(f) for f in folders), key=lambda d: d.name.lower())


_STAMP = r"(?P<at>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:,\d+)?"
_BUILD = re.compile(
    _STAMP + r"\s+Building wheel for (?P<name>\S+) \([^)]*\): "
    r"(?:started|finished with status '(?P<status>\w+)')"
)


@dataclass(frozen=True)
class SourceBuild:
    name: str
    seconds: float | None  # None: started, never finished (the log stops)
    status: str


def source_builds(log_text: str) -> list[SourceBuild]:
    """The wheels pip built from source, in the order it started them, with their durations."""
    started: dict[str, datetime] = {}
    builds: dict[str, SourceBuild] = {}
    for match in _BUILD.finditer(log_text):
        name, at = match["name"], datetime.fromisoformat(match["at"])
        if match["status"] is None:
            started[name] = at
            builds[name] = SourceBuild(name, None, "unfinished")
        elif name in started:
            seconds = (at - started.pop(name)).total_seconds()
            builds[name] = SourceBuild(name, seconds, match["status"])
    return list(builds.values())


def format_installed(dists: list[Installed]) -> str:
    """A markdown table of what a venv holds: name, version, kind, tags."""
    lines = ["| distribution | version | kind | wheel tags |", "|---|---|---|---|"]
    lines += [
        f"| {d.name} | {d.version} | {d.kind.value} | {', '.join(d.tags) or '-'} |" for d in dists
    ]
    return "\n".join(lines)
