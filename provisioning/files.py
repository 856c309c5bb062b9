"""Files and folders with exact modes and owners: the kiosk's folders and its config file."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from kiosk.storage.atomic import write_file_atomic
from provisioning.accounts import read_accounts
from provisioning.steps import Finding, Step, done, todo
from provisioning.target import ProvisionError, Target

log = logging.getLogger(__name__)

CONFIG_PATH = "/etc/kiosk/kiosk.toml"
CONFIG_MODE = 0o640


@dataclass(frozen=True)
class Wanted:
    """A file or folder as it should be: device path, mode, and owner/group names."""

    path: str
    mode: int
    owner: str = "root"
    group: str = "root"

    def label(self) -> str:
        return f"{self.path} {self.mode:04o} {self.owner}:{self.group}"


def differences(target: Target, wanted: Wanted, data: bytes | None = None) -> list[str]:
    """What differs between the file/folder on disk and ``wanted`` (and ``data``, for a file).

    Ownership counts only when running as root: without root it cannot be set, and the
    report says so instead.
    """
    path = target.path(wanted.path)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return [f"{wanted.path} is missing"]
    found = []
    is_dir = path.is_dir() and not path.is_symlink()
    if (data is None) != is_dir:
        found.append(f"{wanted.path} is not a {'folder' if data is None else 'regular file'}")
        return found
    if data is not None and path.read_bytes() != data:
        found.append(f"{wanted.path} has other content")
    if st.st_mode & 0o7777 != wanted.mode:
        found.append(f"{wanted.path} has mode {st.st_mode & 0o7777:04o}, not {wanted.mode:04o}")
    if target.as_root:
        try:
            uid, gid = read_accounts(target).ids(wanted.owner, wanted.group, target)
        except ProvisionError:  # the accounts step has not run yet (dry run)
            return [
                *found,
                f"{wanted.path} needs owner {wanted.owner}:{wanted.group}, not made yet",
            ]
        if (st.st_uid, st.st_gid) != (uid, gid):
            found.append(f"{wanted.path} is owned by {st.st_uid}:{st.st_gid}, not {uid}:{gid}")
    return found


def _owner_ids(target: Target, wanted: Wanted) -> tuple[int, int] | None:
    return read_accounts(target).ids(wanted.owner, wanted.group, target) if target.as_root else None


def ensure_folder(target: Target, wanted: Wanted) -> None:
    path = target.path(wanted.path)
    path.mkdir(parents=True, exist_ok=True, mode=0o755)
    ids = _owner_ids(target, wanted)
    if ids is not None:
        os.chown(path, *ids)
    path.chmod(wanted.mode)


def install_file(target: Target, wanted: Wanted, data: bytes) -> None:
    """Replace the file atomically with owner and mode already set when it appears."""
    path = target.path(wanted.path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    write_file_atomic(
        path, data, wanted.mode, owner=_owner_ids(target, wanted),
        tmp_name=f".{path.name}.provision-tmp",  # hidden: no unit or drop-in glob sees it
    )  # fmt: skip


def _ownership_note(target: Target) -> str:
    return "" if target.as_root else " (owners not set: not running as root)"


class FoldersStep(Step):
    """/etc/kiosk (0750 root:kiosk: the kiosk reads its config) and the state folder (0700)."""

    name = "folders"

    def __init__(self, target: Target, state_dir: str) -> None:
        self.target = target
        self.folders = (
            Wanted("/etc/kiosk", 0o750, "root", "kiosk"),
            Wanted(state_dir, 0o700, "kiosk", "kiosk"),
        )

    def check(self) -> Finding:
        found = [d for w in self.folders for d in differences(self.target, w)]
        if found:
            return todo("; ".join(found))
        return done(", ".join(w.label() for w in self.folders) + _ownership_note(self.target))

    def apply(self) -> str:
        for wanted in self.folders:
            ensure_folder(self.target, wanted)
        return ", ".join(w.label() for w in self.folders) + _ownership_note(self.target)


class ConfigStep(Step):
    """/etc/kiosk/kiosk.toml, 0640 root:kiosk; a replaced file is kept as kiosk.toml.bak."""

    name = "config"

    def __init__(self, target: Target, text: str, summary: str) -> None:
        self.target, self.data, self.summary = target, text.encode("utf-8"), summary
        self.wanted = Wanted(CONFIG_PATH, CONFIG_MODE, "root", "kiosk")

    def check(self) -> Finding:
        found = differences(self.target, self.wanted, self.data)
        if found:
            return todo(f"write {CONFIG_PATH} ({self.summary}): " + "; ".join(found))
        return done(f"{self.wanted.label()} ({self.summary}){_ownership_note(self.target)}")

    def apply(self) -> str:
        path: Path = self.target.path(CONFIG_PATH)
        kept = ""
        if path.is_file() and path.read_bytes() != self.data:
            backup = Wanted(CONFIG_PATH + ".bak", CONFIG_MODE, "root", "kiosk")
            install_file(self.target, backup, path.read_bytes())
            kept = f"; the previous file is {backup.path}"
        install_file(self.target, self.wanted, self.data)
        return f"wrote {self.wanted.label()} ({self.summary}){kept}{_ownership_note(self.target)}"
