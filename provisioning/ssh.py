"""``--harden-ssh``: key-only SSH logins and no root password, as an sshd_config.d drop-in.

sshd keeps the first value it reads for a keyword, and Debian's sshd_config includes
sshd_config.d/*.conf in name order at its top. So the drop-in is named 10-kiosk.conf, not
50-kiosk.conf: it must sort before 50-cloud-init.conf (cloud-init, Raspberry Pi Imager),
which may turn passwords back on. On the kiosk itself ``sshd -T`` then proves the values
are the ones in effect; a drop-in that does not take effect is rolled back.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from provisioning.accounts import read_accounts
from provisioning.files import Wanted, differences, install_file
from provisioning.steps import Finding, Step, done, skip, todo
from provisioning.target import ProvisionError, Target, need, run, which

log = logging.getLogger(__name__)

DROPIN = "/etc/ssh/sshd_config.d/10-kiosk.conf"
CONTENT = b"""\
# Written by kiosk-provision --harden-ssh (docs/provisioning.md): log in with a key only;
# root only with a key. Named 10-: sshd keeps the first value it reads.
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
"""
# as `sshd -T` prints them (it shows prohibit-password by its old name)
EFFECTIVE = {
    "passwordauthentication": "no",
    "kbdinteractiveauthentication": "no",
    "permitrootlogin": "without-password",
}


def key_holders(target: Target) -> list[str]:
    """Accounts that can log in and have a key in ~/.ssh/authorized_keys."""
    holders = []
    for user in read_accounts(target).users.values():
        if user.shell.endswith(("nologin", "false")) or (user.uid != 0 and user.uid < 1000):
            continue
        keys = target.path(user.home) / ".ssh" / "authorized_keys"
        try:
            lines = keys.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        if any(line.strip() and not line.lstrip().startswith("#") for line in lines):
            holders.append(user.name)
    return holders


def _mismatches(output: str) -> list[str]:
    effective = dict(line.split(" ", 1) for line in output.splitlines() if " " in line)
    return [
        f"{key} is {effective.get(key, 'unset')}"
        for key, value in EFFECTIVE.items()
        if effective.get(key) != value
    ]


class SshStep(Step):
    name = "ssh"

    def __init__(self, target: Target, wanted: bool) -> None:
        self.target, self.wanted = target, wanted
        self.file = Wanted(DROPIN, 0o644)

    def _live_mismatches(self) -> list[str]:
        sshd = which("sshd")
        if not self.target.live or sshd is None:
            return []
        result = run([sshd, "-T"], what="reading the SSH server's settings", check=False)
        if result.returncode != 0:
            return [f"sshd -T fails: {result.stderr.strip()}"]
        return _mismatches(result.stdout)

    def check(self) -> Finding:
        if not self.wanted:
            left = (
                "; an earlier 10-kiosk.conf stays in place"
                if self.target.path(DROPIN).exists()
                else ""
            )
            return skip(f"not asked (--harden-ssh){left}")
        work = differences(self.target, self.file, CONTENT) or self._live_mismatches()
        if not work:
            return done(f"{DROPIN}: key-only logins, root with a key only")
        if not key_holders(self.target):
            raise ProvisionError(
                f"no account under {self.target.root} has a key in ~/.ssh/authorized_keys: "
                "with key-only SSH nobody could log in. Add one first (ssh-copy-id "
                "USER@KIOSK), or leave out --harden-ssh"
            )
        return todo(f"write {DROPIN}: " + "; ".join(work))

    def apply(self) -> str:
        path = self.target.path(DROPIN)
        before = path.read_bytes() if path.is_file() else None
        install_file(self.target, self.file, CONTENT)
        try:
            note = self._validate()
        except ProvisionError:
            if before is None:
                path.unlink()
            else:
                install_file(self.target, self.file, before)
            raise
        if self.target.live and Path("/run/systemd/system").is_dir():
            # existing sessions stay; new logins get the new rules
            run(["systemctl", "try-reload-or-restart", "ssh.service"], what="reloading sshd")
        return f"wrote {DROPIN}: key-only logins, root with a key only{note}"

    def _validate(self) -> str:
        sshd = which("sshd")
        if sshd is None:
            return "; not validated: sshd is not installed on this machine"
        if self.target.live:
            result = run([sshd, "-T"], what="checking the SSH server's settings", check=False)
        else:
            with tempfile.TemporaryDirectory(prefix="kiosk-provision-") as tmp:
                key = Path(tmp) / "host_key"  # sshd -T will not run without a host key
                run(
                    [
                        need("ssh-keygen", "openssh-client"),
                        "-q",
                        "-t",
                        "ed25519",
                        "-N",
                        "",
                        "-f",
                        str(key),
                    ],
                    what="making a throwaway host key to check the drop-in",
                )
                argv = [sshd, "-T", "-f", str(self.target.path(DROPIN)), "-h", str(key)]
                result = run(argv, what="checking the drop-in", check=False)
        if "privilege separation directory" in result.stderr:
            return "; not validated: sshd needs /run/sshd, which exists only while sshd runs"
        problems = (
            [f"sshd -T fails: {result.stderr.strip()}"]
            if result.returncode != 0
            else _mismatches(result.stdout)
        )
        if problems:
            raise ProvisionError(
                f"{DROPIN} does not take effect ({'; '.join(problems)}): another file in "
                "/etc/ssh/sshd_config.d or sshd_config sets it first; the drop-in was rolled back"
            )
        return "; checked with sshd -T"
