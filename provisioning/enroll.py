"""Enrollment with the store server: a one-time code becomes the kiosk's token (0600, kiosk's).

An existing token means "already enrolled": the code is not spent again unless
``--re-enroll`` (which then rotates the token on the server on every run that passes it).
"""

from __future__ import annotations

import logging
import os

from kiosk.config import KioskConfig
from kiosk.errors import KioskError
from kiosk.sync.client import RetryPolicy, StoreServerClient
from provisioning.accounts import read_accounts
from provisioning.files import Wanted, differences
from provisioning.steps import Finding, Step, done, skip, todo
from provisioning.target import ProvisionError, Target

log = logging.getLogger(__name__)

TOKEN_MODE = 0o600
KEY_MODE = 0o644  # a public key, inside the 0700 state folder


def make_code(kiosk_id: str) -> str:
    """How to get a code for this kiosk id (each code enrolls one id)."""
    return (
        f"make one on the store server with 'storeserver enroll-code --kiosk {kiosk_id}' "
        "(add --replace when that id is enrolled already)"
    )


class EnrollStep(Step):
    name = "enroll"

    def __init__(self, target: Target, cfg: KioskConfig, code: str | None, again: bool) -> None:
        self.target, self.cfg, self.code, self.again = target, cfg, code, again
        self.enrolled_now = False  # --re-enroll enrolls once per run, not on the re-check
        self.token = Wanted(str(cfg.server.token_file), TOKEN_MODE, "kiosk", "kiosk")
        self.key = Wanted(str(cfg.server.public_key_file), KEY_MODE, "kiosk", "kiosk")

    def _enrolled(self) -> bool:
        path = self.target.path(self.token.path)
        try:
            return bool(path.read_text(encoding="ascii").strip())
        except (FileNotFoundError, UnicodeDecodeError):
            return False

    def _file_problems(self) -> list[str]:
        return [
            problem
            for wanted in (self.token, self.key)
            if self.target.path(wanted.path).exists()
            for problem in differences(
                self.target, wanted, self.target.path(wanted.path).read_bytes()
            )
        ]

    def check(self) -> Finding:
        server = self.cfg.server.url
        if self.again and self.code and not self.enrolled_now:
            return todo(f"re-enroll as {self.cfg.kiosk.id} with {server} (--re-enroll)")
        if self._enrolled():
            problems = self._file_problems()
            if problems:
                return todo("fix the token files: " + "; ".join(problems))
            extra = (
                " (--enroll-code ignored: already enrolled; add --re-enroll)" if self.code else ""
            )
            return done(f"enrolled: token in {self.token.path} ({TOKEN_MODE:04o}){extra}")
        if not self.code:
            return skip(
                f"not enrolled: the kiosk cannot reach {server} without a token; pass "
                f"--enroll-code CODE ({make_code(self.cfg.kiosk.id)})"
            )
        return todo(f"enroll as {self.cfg.kiosk.id} with {server} using the one-time code")

    def apply(self) -> str:
        if self.code and (self.again or not self._enrolled()):
            self._enroll()
            self.enrolled_now = True
            what = f"enrolled as {self.cfg.kiosk.id} with {self.cfg.server.url}"
        else:
            what = "fixed the token files"
        self._own()
        return f"{what}; token {self.token.path} ({TOKEN_MODE:04o})"

    def _enroll(self) -> None:
        s = self.cfg.server
        client = StoreServerClient(
            s.url,
            token_file=self.target.path(s.token_file),
            public_key_file=self.target.path(s.public_key_file),
            ca_bundle=self.target.path(s.ca_bundle) if s.ca_bundle else None,
            pin_sha256=s.pin_sha256,
            pins=s.pins,
            connect_timeout_s=s.connect_timeout_s,
            read_timeout_s=s.read_timeout_s,
            retry=RetryPolicy(attempts=1),  # enrollment is never retried: the code works once
        )
        try:
            with client:
                client.enroll(self.code or "", self.cfg.kiosk.id)
        except KioskError as exc:
            raise ProvisionError(
                f"enrollment with {s.url} failed: {exc} (codes work once and expire after "
                f"24 h: {make_code(self.cfg.kiosk.id)})"
            ) from None

    def _own(self) -> None:
        for wanted in (self.token, self.key):
            path = self.target.path(wanted.path)
            if not path.exists():
                continue
            if self.target.as_root:
                os.chown(
                    path, *read_accounts(self.target).ids(wanted.owner, wanted.group, self.target)
                )
            path.chmod(wanted.mode)
