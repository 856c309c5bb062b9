"""The arm64 root: the host's Debian mirror, binfmt for aarch64, debootstrap, the mounts
(/proc, /sys, /dev and the pip folders; undone on any exit) and commands run inside it.

Everything privileged (debootstrap, mount, chroot) goes through ``sudo`` when not root, as
scripts/dev.sh does. Each command's output goes to a log file under the work folder; a
failure is a ProvisionError with the command, its status, its last lines and the log's path.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from provisioning.target import ProvisionError

log = logging.getLogger(__name__)

SUITE = "bookworm"
FALLBACK_MIRROR = "http://deb.debian.org/debian"  # only when the host's apt names no bookworm
BINFMT = Path("/proc/sys/fs/binfmt_misc")
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSED_ENV = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
TAIL_LINES = 12


# ---- the host's mirror -------------------------------------------------------------------------


def _deb822_stanzas(text: str) -> Iterable[dict[str, str]]:
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if fields:
            yield fields


def mirrors_in(name: str, text: str) -> list[tuple[str, list[str]]]:
    """(URI, suites) of the binary (``deb``) entries of one sources file (one-line or deb822)."""
    found: list[tuple[str, list[str]]] = []
    if name.endswith(".sources"):
        for fields in _deb822_stanzas(text):
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                suites = fields.get("suites", "").split()
                found += [(uri, suites) for uri in fields.get("uris", "").split()]
        return found
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()  # drop [options]
        if len(words) >= 3 and words[0] == "deb":
            found.append((words[1], [words[2]]))
    return found


def host_mirror(apt_dir: Path = Path("/etc/apt"), suite: str = SUITE) -> str:
    """The first mirror the host's apt uses for ``suite`` (sources.list, then sources.list.d/
    *.list and *.sources in name order), else FALLBACK_MIRROR."""
    files = [apt_dir / "sources.list"]
    folder = apt_dir / "sources.list.d"
    if folder.is_dir():
        files += sorted(p for p in folder.iterdir() if p.suffix in (".list", ".sources"))
    for path in files:
        if not path.is_file():
            continue
        for uri, suites in mirrors_in(path.name, path.read_text(errors="replace")):
            if suite in suites:
                return uri.rstrip("/")
    log.warning("no %s mirror in %s: using %s", suite, apt_dir, FALLBACK_MIRROR)
    return FALLBACK_MIRROR


# ---- commands ----------------------------------------------------------------------------------


class Runner:
    """Runs host commands (privileged ones through sudo when not root), logging to files."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.sudo: list[str] = [] if os.geteuid() == 0 else ["sudo", "--preserve-env"]
        logs.mkdir(parents=True, exist_ok=True)

    def run(
        self,
        argv: Sequence[str],
        *,
        what: str,
        log_name: str,
        timeout_s: float = 600,
        env: Mapping[str, str] | None = None,
        privileged: bool = False,
        check: bool = True,
        clean_env: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """``env`` is added to this process's environment; ``clean_env``: it is the whole."""
        argv = [*(self.sudo if privileged else []), *argv]
        path = self.logs / f"{log_name}.log"
        with path.open("a") as out:
            out.write(f"\n$ {shlex.join(argv)}\n")
            out.flush()
            try:
                result = subprocess.run(
                    argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                    timeout=timeout_s, env=dict(env or {}) if clean_env else {**os.environ, **(env or {})},
                    stdin=subprocess.DEVNULL, errors="replace",
                )  # fmt: skip
            except subprocess.TimeoutExpired as exc:
                out.write(str(exc.output or ""))
                raise ProvisionError(
                    f"{what}: no end within {timeout_s:.0f} s (log: {path})"
                ) from None
            out.write(result.stdout)
        if check and result.returncode != 0:
            tail = " / ".join(result.stdout.strip().splitlines()[-TAIL_LINES:])
            raise ProvisionError(
                f"{what}: `{shlex.join(argv)[:200]}` exited with status {result.returncode}: "
                f"{tail or 'no output'} (log: {path})"
            )
        return result


# ---- the root ----------------------------------------------------------------------------------


def mounts_under(root: Path, table: str) -> list[Path]:
    """Mount points at or under ``root`` in a /proc/self/mounts text, deepest first."""
    points = [Path(line.split()[1].replace("\\040", " ")) for line in table.splitlines() if line]
    under = [p for p in points if p == root or root in p.parents]
    return sorted(set(under), key=lambda p: len(p.parts), reverse=True)


class ArmRoot:
    """A debootstrapped bookworm arm64 root at ``path`` and what is mounted into it."""

    def __init__(self, path: Path, runner: Runner) -> None:
        self.path, self.runner = path.resolve(), runner
        self.stamp = self.path.parent / f"{self.path.name}.complete"  # debootstrap finished

    # binfmt and debootstrap
    def ensure_binfmt(self) -> str:
        if not (BINFMT / "register").exists():
            self.runner.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)],
                            what="mounting binfmt_misc", log_name="binfmt", privileged=True)  # fmt: skip
        if not (BINFMT / "qemu-aarch64").exists():
            self.runner.run(["update-binfmts", "--enable", "qemu-aarch64"],
                            what="enabling qemu-aarch64", log_name="binfmt", privileged=True)  # fmt: skip
        entry = (BINFMT / "qemu-aarch64").read_text()
        if "enabled" not in entry.splitlines()[:1]:
            raise ProvisionError(f"binfmt qemu-aarch64 is not enabled: {entry.splitlines()[:1]}")
        interpreter = next((x for x in entry.splitlines() if x.startswith("interpreter")), "")
        return f"qemu-aarch64 registered ({interpreter})"

    def build(self, mirror: str, include: Sequence[str], rebuild: bool) -> str:
        if self.stamp.exists() and not rebuild:
            return f"reused {self.path} (built {self.stamp.read_text().strip()}; --rebuild-root)"
        self.unmount_all()
        if self.path.exists():
            self.runner.run(["rm", "-rf", "--one-file-system", str(self.path)],
                            what="removing the old root", log_name="debootstrap", privileged=True)  # fmt: skip
        self.stamp.unlink(missing_ok=True)
        self.runner.run(
            ["debootstrap", "--arch=arm64", "--variant=minbase", f"--include={','.join(include)}",
             SUITE, str(self.path), mirror],
            what="debootstrap", log_name="debootstrap", timeout_s=3600, privileged=True,
        )  # fmt: skip
        self.stamp.write_text(f"{SUITE} arm64 from {mirror}\n")
        return f"built {self.path} from {mirror}"

    # mounts
    def _mount(self, argv: list[str]) -> None:
        self.runner.run(["mount", *argv], what="mounting into the root", log_name="mounts",
                        privileged=True)  # fmt: skip

    def mount_all(self, readonly: Sequence[Path]) -> None:
        """/proc, /sys, /dev (+pts) and each host folder read-only at the same path."""
        self.unmount_all()  # a killed earlier run may have left some
        self._mount(["-t", "proc", "proc", str(self.path / "proc")])
        self._mount(["-t", "sysfs", "sysfs", str(self.path / "sys")])
        self._mount(["--bind", "/dev", str(self.path / "dev")])
        self._mount(["--bind", "/dev/pts", str(self.path / "dev/pts")])
        for folder in readonly:
            inside = self.path / folder.relative_to("/")
            self.runner.run(["mkdir", "-p", str(inside)], what="mkdir", log_name="mounts",
                            privileged=True)  # fmt: skip
            self._mount(["--bind", str(folder), str(inside)])
            self._mount(["-o", "remount,bind,ro", str(inside)])

    def unmount_all(self) -> None:
        for point in mounts_under(self.path, Path("/proc/self/mounts").read_text()):
            self.runner.run(["umount", "--lazy", str(point)], what=f"unmounting {point}",
                            log_name="mounts", privileged=True, check=False)  # fmt: skip
        left = mounts_under(self.path, Path("/proc/self/mounts").read_text())
        if left:
            raise ProvisionError(f"still mounted under the root: {', '.join(map(str, left))}")

    # inside
    def put(self, inside: str, data: bytes, mode: int = 0o644) -> None:
        """Write a file in the root (as root through sudo when needed)."""
        dest = self.path / inside.lstrip("/")
        self.runner.run(["mkdir", "-p", str(dest.parent)], what="mkdir", log_name="files",
                        privileged=True)  # fmt: skip
        subprocess.run([*self.runner.sudo, "tee", str(dest)], input=data, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        self.runner.run(["chmod", f"{mode:o}", str(dest)], what="chmod", log_name="files",
                        privileged=True)  # fmt: skip

    def run(
        self,
        argv: Sequence[str],
        *,
        what: str,
        log_name: str,
        timeout_s: float = 600,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """``argv`` inside the root under emulation, with a clean environment."""
        clean = {"PATH": ROOT_PATH, "HOME": "/root", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        clean |= {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        clean |= dict(env or {})
        pairs = [f"{k}={v}" for k, v in clean.items()]
        return self.runner.run(
            ["chroot", str(self.path), "/usr/bin/env", "-i", *pairs, *argv],
            what=what, log_name=log_name, timeout_s=timeout_s, privileged=True, check=check,
        )  # fmt: skip
