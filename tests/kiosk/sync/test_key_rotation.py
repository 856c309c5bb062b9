"""A store key rotation seen by a kiosk: the heartbeat brings the keys, the kiosk stores them and
its member, staff and technician checks accept codes of the current and the previous key during
the overlap, and only the current one after ``rotate-key --finish``. Real server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.domain.member_codes import CodeRejected
from kiosk.domain.staff import StaffRejected, verify_badge
from kiosk.services.diagnostics import verify_technician
from kiosk.services.identify import CodeRefused, MemberIdentifier
from kiosk.storage import Journal
from kiosk.storage.outbox import Outbox
from kiosk.storage.server_keys import ServerKeyFile
from kiosk.sync.client import RetryPolicy, StoreServerClient
from kiosk.sync.records import SyncSettings
from kiosk.sync.worker import SyncWorker
from storeserver import codes, demo, keys, kiosks
from storeserver.clock import ManualClock
from storeserver.runner import ServerThread
from storeserver.store import Store

KIOSK = "kiosk-01"


@dataclass
class Site:
    store: Store
    keyfile: ServerKeyFile
    identifier: MemberIdentifier
    worker: SyncWorker

    def now(self) -> int:
        return int(self.store.clock.now().timestamp())

    def code(self, key: Ed25519PrivateKey, kind=codes.CodeKind.MEMBER, subject="M0001") -> str:
        validity = 86400 if kind is codes.CodeKind.STAFF else 60
        return codes.issue(key, kind, subject, self.now(), validity)

    def accepts(self, key: Ed25519PrivateKey) -> bool:
        """Whether a member code, a badge and a technician code of ``key`` all pass on the
        kiosk (and the member code on the server); False if all are refused as forged."""
        results = []
        try:
            self.identifier.identify(self.code(key))
            results.append(True)
        except CodeRefused as exc:
            assert exc.reason == "forged"
            results.append(False)
        try:
            badge = self.code(key, codes.CodeKind.STAFF, "S0001")
            results.append(verify_badge(badge, self.keyfile.trusted, self.now()).subject == "S0001")
        except StaffRejected:
            results.append(False)
        try:
            tech = self.code(key, codes.CodeKind.TECHNICIAN, KIOSK)
            results.append(
                verify_technician(tech, self.keyfile.path, self.now(), KIOSK) is not None
            )
        except CodeRejected:
            results.append(False)
        assert len(set(results)) == 1, results
        return results[0]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    clock = ManualClock()
    store = Store(tmp_path / "store.db", clock=clock)
    demo.seed(store, [KIOSK])
    with ServerThread(store, "127.0.0.1", 0) as server:
        client = StoreServerClient(
            server.url,
            token_file=tmp_path / "kiosk" / "token",
            public_key_file=tmp_path / "kiosk" / "server_key.pub",
            retry=RetryPolicy(attempts=1),
        )
        with store.db.transaction() as conn:
            enrollment_code = kiosks.new_enrollment_code(conn, clock, KIOSK)
        client.enroll(enrollment_code, KIOSK)
        keyfile = ServerKeyFile(tmp_path / "kiosk" / "server_key.pub")
        trusted = keyfile.load()
        assert trusted is not None
        with Journal.open(tmp_path / "kiosk" / "journal") as journal:
            now = lambda: clock.now().timestamp()  # noqa: E731
            identifier = MemberIdentifier(client, journal, trusted, now=now, cache_hours=24)
            worker = SyncWorker(
                client, Outbox(journal), settings=SyncSettings(heartbeat_s=0, refresh_s=1e9),
                on_keys=keyfile.update, clock=now,
            )  # fmt: skip
            yield Site(store, keyfile, identifier, worker)
        client.close()
    store.close()


def test_a_rotation_reaches_the_kiosk_and_finish_drops_the_previous_key(site: Site):
    old = site.store.signing_key
    keys.rotate(site.store.keys.path, site.now(), 7 * 86400)
    new = site.store.signing_key
    assert not site.accepts(new)  # not yet told
    site.worker.run_once()
    assert site.worker.status().last_error is None
    assert site.keyfile.path.read_text().split() == codes.public_keys_b64([new, old])
    assert site.accepts(new) and site.accepts(old)  # the overlap
    assert not site.accepts(Ed25519PrivateKey.generate())

    keys.finish_rotation(site.store.keys.path)
    site.worker.run_once()
    assert site.keyfile.path.read_text().split() == codes.public_keys_b64([new])
    assert site.accepts(new) and not site.accepts(old)


def test_the_same_keys_again_write_nothing(site: Site):
    before = site.keyfile.path.stat().st_ino
    site.worker.run_once()
    site.worker.run_once()
    assert site.keyfile.path.stat().st_ino == before
