"""The host's pip configuration, carried into the arm64 root: the same indexes, find-links,
certificates and constraints, nothing hard-coded.

Read from ``pip config list`` (which merges the global, user and site files and shows the
``PIP_*`` environment as ``:env:``), planned into the root's ``/etc/pip.conf``: files it names
(``cert``, ``client-cert``, ``constraint``) are copied under ``/etc/pi-check/pip`` in the root;
local folders (``file://`` indexes, find-links paths) are bind-mounted read-only at the same
path inside the root, so their URLs stay as they are. A ``file://.../simple`` index mounts its
parent folder: a simple index links to its files with ``../../files/...``.
"""

from __future__ import annotations

import ast
import logging
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

log = logging.getLogger(__name__)

# a pip.conf section, lowest precedence first: ``install`` options win over ``global``, and
# the environment (PIP_*) over both
SECTIONS = ("global", "install", ":env:")
FILE_OPTIONS = ("cert", "client-cert", "constraint")
LOCATION_OPTIONS = ("index-url", "extra-index-url", "find-links")
# where the host keeps things of its own: meaningless (or harmful) inside the root
HOST_ONLY = frozenset({"cache-dir", "log", "log-file", "src", "target", "prefix", "root", "user"})
COPIES_IN_ROOT = PurePosixPath("/etc/pi-check/pip")
PIP_LOG_IN_ROOT = PurePosixPath("/var/log/pi-check/pip.log")  # every pip run in the root logs here


@dataclass(frozen=True)
class RootPip:
    """What the root's pip gets: ``/etc/pip.conf``'s options, the host files copied in
    (host path -> path in the root) and the host folders mounted read-only at their path."""

    options: dict[str, str]
    copies: dict[Path, PurePosixPath] = field(default_factory=dict)
    mounts: tuple[Path, ...] = ()

    def pip_conf(self) -> str:
        lines = ["# written by scripts/pi-check.sh from the host's `pip config list`", "[global]"]
        lines += [f"{key} = {value}" for key, value in sorted(self.options.items())]
        return "\n".join(lines) + "\n"


def parse_config_list(text: str) -> dict[str, str]:
    """``pip config list``'s lines (``section.key='value'``) -> the options in effect."""
    found: dict[str, dict[str, str]] = {section: {} for section in SECTIONS}
    for line in text.splitlines():
        name, sep, quoted = line.partition("=")
        section, dot, key = name.strip().rpartition(".")
        if not sep or not dot or section not in found:
            continue  # another command's section (download, wheel...) or not an option line
        try:
            value = ast.literal_eval(quoted.strip())  # pip prints the value's repr
        except (ValueError, SyntaxError):
            value = quoted.strip()
        found[section][key] = str(value)
    merged: dict[str, str] = {}
    for section in SECTIONS:
        merged.update(found[section])
    return merged


def local_folder(location: str) -> Path | None:
    """The host folder behind an index or find-links entry, or None for a remote one."""
    parsed = urlparse(location)
    if parsed.scheme == "file":
        path = Path(unquote(parsed.path))
    elif not parsed.scheme and location.startswith("/"):
        path = Path(location)
    else:
        return None
    if path.name == "simple" or (path.suffix and not path.is_dir()):
        return path.parent  # a simple index links to ../../files; a file lives in its folder
    return path


def plan_root_pip(options: dict[str, str]) -> RootPip:
    """The host's options as the root's pip needs them (see the module's docstring)."""
    kept = {k: v for k, v in options.items() if k not in HOST_ONLY}
    copies: dict[Path, PurePosixPath] = {}
    for key in FILE_OPTIONS:
        if key not in kept:
            continue
        inside = []
        for n, item in enumerate(kept[key].split()):
            if urlparse(item).scheme:  # a constraints URL: pip fetches it itself
                inside.append(item)
                continue
            dest = COPIES_IN_ROOT / f"{key}-{n}{Path(item).suffix or '.txt'}"
            copies[Path(item)] = dest
            inside.append(str(dest))
        kept[key] = " ".join(inside)
    mounts: list[Path] = []
    for key in LOCATION_OPTIONS:
        for item in kept.get(key, "").split():
            folder = local_folder(item)
            if folder is not None and folder not in mounts:
                mounts.append(folder)
    kept["log"] = str(PIP_LOG_IN_ROOT)
    return RootPip(kept, copies, tuple(mounts))
