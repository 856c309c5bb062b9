"""The ``kiosk`` system user and the device groups it needs, and lookups in passwd/group.

As root, the shadow tools do the work (``useradd``/``groupadd``/``usermod``, with ``--prefix
DIR`` under ``--root``: they edit DIR/etc and never chroot, which is how image builders use
them). Without root, under ``--root`` only, the same entries are written to DIR/etc directly,
since the tools refuse to run; that is for tests and rootless image builds.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from kiosk.storage.atomic import write_file_atomic
from provisioning.steps import Finding, Step, done, todo
from provisioning.target import ProvisionError, Target, need, run

log = logging.getLogger(__name__)

KIOSK_USER = "kiosk"
# gpio: locker; dialout: printer; video: camera, display; input: touch screen. render (GPU)
# because kiosk.service lists it in SupplementaryGroups, and a missing group stops the unit.
KIOSK_GROUPS = ("gpio", "dialout", "video", "input", "render")
NOLOGIN = "/usr/sbin/nologin"
COMMENT = "Loyalty kiosk"

# What a base system has before anything else: root only (seeded into an empty --root).
_BASE_FILES = {
    "passwd": ("root:x:0:0:root:/root:/bin/bash\n", 0o644),
    "group": ("root:x:0:\n", 0o644),
    "shadow": ("root:*::0:99999:7:::\n", 0o640),
    "gshadow": ("root:*::\n", 0o640),
}


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: str
    shell: str


@dataclass(frozen=True)
class Group:
    name: str
    gid: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class Accounts:
    """The users and groups in the target's /etc/passwd and /etc/group."""

    users: dict[str, User]
    groups: dict[str, Group]

    def in_group(self, user: str, group: str) -> bool:
        g, u = self.groups.get(group), self.users.get(user)
        return g is not None and u is not None and (user in g.members or u.gid == g.gid)

    def ids(self, owner: str, group: str, where: Target) -> tuple[int, int]:
        """(uid, gid) for file ownership; ``group`` may be a user name (its primary group)."""
        user = self.users.get(owner)
        gid = self.groups[group].gid if group in self.groups else None
        if gid is None and group in self.users:
            gid = self.users[group].gid
        if user is None or gid is None:
            missing = owner if user is None else group
            raise ProvisionError(
                f"{missing!r} is not in {where.path('/etc/passwd')} or group: the accounts "
                "step creates it, so do not --skip accounts on a new kiosk"
            )
        return user.uid, gid


def _lines(path: Path) -> list[str]:
    try:
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def read_accounts(target: Target) -> Accounts:
    """Parse the target's passwd and group (missing files: no accounts)."""
    users, groups = {}, {}
    for line in _lines(target.path("/etc/passwd")):
        f = line.split(":")
        if len(f) >= 7 and f[2].isdigit() and f[3].isdigit():
            users[f[0]] = User(f[0], int(f[2]), int(f[3]), f[5], f[6])
    for line in _lines(target.path("/etc/group")):
        f = line.split(":")
        if len(f) >= 4 and f[2].isdigit():
            groups[f[0]] = Group(f[0], int(f[2]), tuple(m for m in f[3].split(",") if m))
    return Accounts(users, groups)


class AccountsStep(Step):
    """A system user ``kiosk`` (no login, home = the state folder) in the device groups."""

    name = "accounts"

    def __init__(self, target: Target, home: str) -> None:
        self.target, self.home = target, home

    def _missing(self) -> tuple[Accounts, list[str], bool, list[str]]:
        acc = read_accounts(self.target)
        missing_groups = [g for g in KIOSK_GROUPS if g not in acc.groups]
        no_user = KIOSK_USER not in acc.users
        not_member = [g for g in KIOSK_GROUPS if not acc.in_group(KIOSK_USER, g)]
        return acc, missing_groups, no_user, not_member

    def check(self) -> Finding:
        acc, missing_groups, no_user, not_member = self._missing()
        if not (missing_groups or no_user or not_member):
            user = acc.users[KIOSK_USER]
            return done(f"user kiosk (uid {user.uid}) in {', '.join(KIOSK_GROUPS)}")
        work = []
        if missing_groups:
            work.append(f"create system group(s) {', '.join(missing_groups)}")
        if no_user:
            work.append(f"create system user kiosk (home {self.home}, no login shell)")
        if not_member:
            work.append(f"add kiosk to {', '.join(not_member)}")
        return todo("; ".join(work))

    def apply(self) -> str:
        seeded = self._seed_base_files()
        acc, missing_groups, no_user, not_member = self._missing()
        if self.target.as_root:
            self._with_tools(missing_groups, no_user, not_member)
        elif self.target.live:
            raise ProvisionError("creating the kiosk user needs root: run with sudo")
        else:
            _FileWriter(self.target).add(acc, missing_groups, no_user, not_member, self.home)
        user = read_accounts(self.target).users.get(KIOSK_USER)
        made = [f"created user kiosk (uid {user.uid})"] if no_user and user else []
        if missing_groups:
            made.insert(0, f"created group(s) {', '.join(missing_groups)}")
        if not_member and not no_user:
            made.append(f"added kiosk to {', '.join(not_member)}")
        return "; ".join(seeded + made) or "nothing"

    def _seed_base_files(self) -> list[str]:
        if self.target.live or self.target.path("/etc/passwd").exists():
            return []
        etc = self.target.path("/etc")
        etc.mkdir(parents=True, exist_ok=True)
        for name, (text, mode) in _BASE_FILES.items():
            if not (etc / name).exists():
                write_file_atomic(etc / name, text.encode(), mode)
        return [f"no {etc}/passwd: started one with root only"]

    def _with_tools(self, missing_groups: list[str], no_user: bool, not_member: list[str]) -> None:
        prefix = self.target.root_args("--prefix")
        for group in missing_groups:
            run(
                [need("groupadd", "passwd"), *prefix, "--system", group],
                what=f"creating group {group}",
            )
        if no_user:
            run(
                [
                    need("useradd", "passwd"),
                    *prefix,
                    *("--system", "--user-group", "--home-dir", self.home, "--no-create-home"),
                    *("--shell", NOLOGIN, "--comment", COMMENT),
                    *("--groups", ",".join(KIOSK_GROUPS), KIOSK_USER),
                ],
                what="creating the kiosk user",
            )
        elif not_member:
            run(
                [need("usermod", "passwd"), *prefix, "-a", "-G", ",".join(not_member), KIOSK_USER],
                what="adding kiosk to its groups",
            )


class _FileWriter:
    """The entries useradd/groupadd would write, for a --root run without root."""

    def __init__(self, target: Target) -> None:
        self.etc = target.path("/etc")
        self.files = {name: _lines(self.etc / name) for name in _BASE_FILES}
        self.defs = (
            (self.etc / "login.defs").read_text() if (self.etc / "login.defs").exists() else ""
        )

    def _range(self, kind: str) -> tuple[int, int]:
        def value(key: str, default: int) -> int:
            found = re.search(rf"^\s*{key}\s+(\d+)", self.defs, re.MULTILINE)
            return int(found.group(1)) if found else default

        return value(f"SYS_{kind}_MIN", 100), value(f"SYS_{kind}_MAX", 999)

    @staticmethod
    def _free(used: set[int], low: int, high: int, what: str) -> int:
        # like useradd: the highest free id of the system range
        for candidate in range(high, low - 1, -1):
            if candidate not in used:
                used.add(candidate)
                return candidate
        raise ProvisionError(f"no free system {what} left in {low}-{high} (login.defs)")

    def add(
        self,
        acc: Accounts,
        missing_groups: list[str],
        no_user: bool,
        not_member: list[str],
        home: str,
    ) -> None:
        gids = {g.gid for g in acc.groups.values()}
        uids = {u.uid for u in acc.users.values()}
        for group in missing_groups:
            gid = self._free(gids, *self._range("GID"), "group id")
            self._append("group", f"{group}:x:{gid}:")
            self._append("gshadow", f"{group}:!::")
        if no_user:
            uid = self._free(uids, *self._range("UID"), "user id")
            gid = uid if uid not in gids else self._free(gids, *self._range("GID"), "group id")
            gids.add(gid)
            self._append("group", f"{KIOSK_USER}:x:{gid}:")
            self._append("gshadow", f"{KIOSK_USER}:!::")
            self._append("passwd", f"{KIOSK_USER}:x:{uid}:{gid}:{COMMENT}:{home}:{NOLOGIN}")
            days = (dt.date.today() - dt.date(1970, 1, 1)).days
            self._append("shadow", f"{KIOSK_USER}:!:{days}::::::")
        for name in ("group", "gshadow"):
            self.files[name] = [self._with_member(line, not_member) for line in self.files[name]]
        for name, lines in self.files.items():
            path = self.etc / name
            if path.exists():
                mode = path.stat().st_mode & 0o7777
                write_file_atomic(path, "".join(f"{line}\n" for line in lines).encode(), mode)

    def _append(self, name: str, line: str) -> None:
        if (self.etc / name).exists():
            self.files[name].append(line)

    @staticmethod
    def _with_member(line: str, groups: list[str]) -> str:
        fields = line.split(":")
        if len(fields) < 4 or fields[0] not in groups:
            return line
        members = [m for m in fields[3].split(",") if m]
        if KIOSK_USER not in members:
            fields[3] = ",".join([*members, KIOSK_USER])
        return ":".join(fields)
