"""``kiosk-provision update ARTIFACT``: switch a kiosk to a new release, or back if it is sick.

Steps, each printed with its time and appended to ROOT/var/log/kiosk-update.log:

1. read and verify the artifact (sha256 of each file): a bad one exits 2, nothing changed;
2. its version is current and the service runs: "nothing to change", exit 0;
3. wait until ``kiosk idle`` (of the current release) says nobody would be cut off, up to
   ``--idle-timeout``: still busy exits 3, nothing changed;
4. install the release beside the current one (/opt/kiosk/releases/<version>), ask
   ``kiosk idle`` again (the install takes minutes), switch /opt/kiosk/current, restart;
5. healthy = READY=1 within ``--health-timeout`` and ``kiosk doctor`` with no FAIL line (its
   warnings are said, not fatal); exit 0;
6. else switch back, restart the previous release, wait for its READY=1: exit 1 with
   "rolled back to <version>: <why>" and the new release's last log lines, or
   "ROLLBACK FAILED" when the old one does not come back either.

The failed release's folder is kept for inspection; releases beyond ``--keep`` are removed,
never the current or the previous one. Exit codes: 0 updated / nothing to change, 1 failed
(rolled back, or not), 2 bad arguments or artifact, 3 the kiosk stayed busy.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import KioskError
from provisioning.files import CONFIG_PATH
from provisioning.release import (
    CURRENT_LINK,
    current_version,
    install_release,
    installed_versions,
    read_release,
    release_dir,
    remove_release,
    switch_current,
)
from provisioning.service import ServiceManager, choose_manager
from provisioning.target import ProvisionError, Target

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUSY = 0, 1, 2, 3
LOG_PATH = "/var/log/kiosk-update.log"
IDLE_POLL_S = 2.0
DOCTOR_TIMEOUT_S = 120


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kiosk-provision update",
        description="Switch this kiosk (or --root DIR) to the release in ARTIFACT when it is "
        "idle; check its health and switch back if it is not healthy.",
        epilog="Exit status: 0 updated or nothing to change, 1 failed (rolled back), 2 bad "
        "arguments or artifact, 3 the kiosk stayed busy. Guide: docs/updates.md",
    )
    p.add_argument("artifact", type=Path, help="kiosk-<version>.tar from build-release")
    p.add_argument("--root", type=Path, metavar="DIR", help="update under DIR instead of /")
    p.add_argument("--health-timeout", type=float, default=120.0, metavar="S",
                   help="seconds the new release has to send READY=1 (default 120)")  # fmt: skip
    p.add_argument("--idle-timeout", type=float, default=600.0, metavar="S",
                   help="seconds to wait for an idle kiosk before giving up (default 600)")  # fmt: skip
    p.add_argument("--keep", type=int, default=3, metavar="N",
                   help="installed releases to keep (never the current or previous; default 3)")  # fmt: skip
    p.add_argument("--service-manager", choices=("systemd", "process"),
                   help="how the kiosk is restarted (default: systemd when this machine runs it "
                   "and there is no --root, else process)")  # fmt: skip
    p.add_argument("--service-env", action="append", default=[], metavar="KEY=VALUE",
                   help="process manager: an environment variable over the unit's "
                   "(repeatable), e.g. SDL_VIDEODRIVER=offscreen")  # fmt: skip
    return p


@dataclass
class Updater:
    target: Target
    service: ServiceManager
    log_path: Path

    def say(self, text: str, *, err: bool = False) -> None:
        line = f"{time.strftime('%H:%M:%S')} {text}"
        print(line, file=sys.stderr if err else sys.stdout, flush=True)
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a", encoding="utf-8") as f:
                f.write(f"{time.strftime('%F')} {line}\n")
        except OSError:
            pass  # the update goes on; the terminal has it

    # ---- the current release's own commands --------------------------------------------------
    def kiosk(
        self, *args: str, timeout_s: float = 60, program: list[str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The current release's ``kiosk`` command (or ``program``) on the kiosk's config."""
        program = program or [str(self.target.path(f"{CURRENT_LINK}/bin/kiosk"))]
        config = self.target.path(CONFIG_PATH)
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        env["RUNTIME_DIRECTORY"] = str(self.target.path("/run/kiosk"))
        try:
            return subprocess.run(
                [*program, "--config", str(config), *args],
                capture_output=True, text=True, timeout=timeout_s, env=env, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            return subprocess.CompletedProcess(program, 2, "", f"{program[0]}: {exc}")

    def busy_reason(self) -> str | None:
        r = self.kiosk("idle")
        if r.returncode == 2 and "invalid choice: 'idle'" in r.stderr:
            r = self.kiosk("idle", program=[sys.executable, "-m", "kiosk"])  # an older current
        said = (r.stdout.strip() or r.stderr.strip()).splitlines()
        return None if r.returncode == 0 else (said[0] if said else f"exit {r.returncode}")

    def wait_idle(self, timeout_s: float) -> str | None:
        """None once idle; the last busy reason when ``timeout_s`` ran out."""
        deadline = time.monotonic() + timeout_s
        reason = self.busy_reason()
        if reason is not None:
            self.say(f"waiting up to {timeout_s:.0f} s for the kiosk to be idle: {reason}")
        while reason is not None and time.monotonic() < deadline:
            time.sleep(min(IDLE_POLL_S, max(0.0, deadline - time.monotonic())))
            reason = self.busy_reason()
        return reason

    def doctor_failures(self) -> list[str]:
        args = ["doctor"] + (["--no-service"] if self.service.name == "process" else [])
        r = self.kiosk(*args, timeout_s=DOCTOR_TIMEOUT_S)
        lines = r.stdout.splitlines()
        fails = [ln.strip() for ln in lines if ln.strip().startswith("FAIL ")]
        if r.returncode not in (0, 1) and not fails:
            fails = [f"kiosk doctor exited {r.returncode}: {r.stderr.strip()[-300:]}"]
        for ln in lines:
            if ln.strip().startswith("WARN "):
                self.say(f"  doctor: {ln.strip()}")
        return fails

    def healthy(self, timeout_s: float) -> tuple[bool, str]:
        ready = self.service.wait_ready(timeout_s)
        if not ready.ready:
            return False, ready.detail
        self.say(f"  {ready.detail}")
        fails = self.doctor_failures()
        if fails:
            return False, "kiosk doctor: " + "; ".join(" ".join(f.split()) for f in fails)
        return True, ready.detail

    # ---- the steps ---------------------------------------------------------------------------
    def update(self, artifact: Path, args: argparse.Namespace) -> int:
        manifest = read_release(artifact)  # verified by main already (a bad one: exit 2)
        now = current_version(self.target)
        self.say(f"release {manifest.version} (commit {manifest.commit}); current: {now or 'none'}")
        if manifest.version == now and self.service.is_running():
            self.say(f"kiosk-provision update: nothing to change ({now} is current and running)")
            return EXIT_OK
        if now is not None and (busy := self.wait_idle(args.idle_timeout)) is not None:
            self.say(f"kiosk-provision update: kiosk busy, nothing changed: {busy}", err=True)
            return EXIT_BUSY
        self.say(f"installing {manifest.version} in {release_dir(self.target, manifest.version)}")
        install_release(self.target, artifact)
        if now is not None and (busy := self.wait_idle(args.idle_timeout)) is not None:
            self.say(f"kiosk-provision update: kiosk busy, not switched: {busy}", err=True)
            return EXIT_BUSY
        previous = switch_current(self.target, manifest.version)
        self.say(f"{CURRENT_LINK} -> releases/{manifest.version} (was {previous}); restarting")
        try:
            self.service.restart()
            ok, why = self.healthy(args.health_timeout)
        except KioskError as exc:  # it could not even be started: the same as not healthy
            ok, why = False, str(exc)
        if ok:
            self.prune(args.keep, manifest.version, previous)
            self.say(f"kiosk-provision update: updated to {manifest.version} ({why})")
            return EXIT_OK
        return self.roll_back(manifest.version, previous, why, args)

    def roll_back(
        self, failed: str, previous: str | None, why: str, args: argparse.Namespace
    ) -> int:
        tail = self.service.last_log(20)
        self.say(f"release {failed} is not healthy: {why}", err=True)
        if tail:
            self.say(f"its last log lines:\n{tail}", err=True)
        if previous is None or previous == failed:
            self.say(f"ROLLBACK FAILED: no previous release to go back to ({why})", err=True)
            return EXIT_FAILED
        switch_current(self.target, previous)
        self.say(f"{CURRENT_LINK} -> releases/{previous} again; restarting it")
        try:
            self.service.restart()
            back = self.service.wait_ready(args.health_timeout)
        except KioskError as exc:
            back_ok, back_detail = False, str(exc)
        else:
            back_ok, back_detail = back.ready, back.detail
        if not back_ok:
            self.say(
                f"ROLLBACK FAILED: {previous} did not come back ({back_detail}); {failed} "
                f"failed first ({why}). The kiosk is DOWN: run `kiosk doctor` on it",
                err=True,
            )
            return EXIT_FAILED
        self.prune(args.keep, previous, failed)
        self.say(f"kiosk-provision update: rolled back to {previous}: {why}", err=True)
        return EXIT_FAILED

    def prune(self, keep: int, current: str, previous: str | None) -> None:
        """Remove the oldest releases beyond ``keep``, never ``current`` or ``previous``."""
        versions = installed_versions(self.target)  # oldest first
        spare = {current, previous}
        extra = [v for v in versions if v not in spare]
        for version in extra[: max(0, len(versions) - max(keep, len(spare)))]:
            try:
                remove_release(self.target, version)
            except (ProvisionError, OSError) as exc:  # the update itself is done
                self.say(f"could not remove old release {version}: {exc}", err=True)
            else:
                self.say(f"removed old release {version} (keeping {keep})")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    env = {}
    for item in args.service_env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--service-env {item!r}: KEY=VALUE expected")
        env[key] = value
    if args.keep < 2:
        parser.error("--keep: at least 2 (the current release and the previous one)")
    target = Target.make(args.root, False)
    if target.live and not target.as_root:
        parser.error("this changes the machine: run it as root (sudo), or pass --root DIR")
    try:
        service = choose_manager(args.service_manager, target, env)
        read_release(args.artifact)
        if current_version(target) is None:
            raise ProvisionError(
                f"no current release ({target.path(CURRENT_LINK)} is no link to "
                "releases/<version>): the first install is kiosk-provision --release ARTIFACT"
            )
        service.check()
    except ProvisionError as exc:
        print(f"kiosk-provision update: {exc}", file=sys.stderr)
        return EXIT_USAGE
    updater = Updater(target, service, target.path(LOG_PATH))
    try:
        return updater.update(args.artifact, args)
    except KioskError as exc:
        updater.say(f"kiosk-provision update: FAILED: {exc}", err=True)
        return EXIT_FAILED
