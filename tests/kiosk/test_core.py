"""The wired core (config -> adapters -> services) against the real server on loopback."""

from __future__ import annotations

import threading
import time

from drivers.printer import make_printer
from drivers.printer.sim_printer import VirtualPrinter
from kiosk.config import parse_config
from kiosk.core import build_core
from kiosk.domain.transaction import TxnKind, TxnState, new_transaction
from kiosk.domain.txn_receipts import TxnContext
from kiosk.services.txn_steps import Outcome
from kiosk.sync.client import StoreServerClient
from kiosk.sync.worker import SyncSettings
from storeserver import members

from .services.rig import KIOSK, MUG, ServerSide, member


def config(tmp_path, url):
    compartments = [{"number": n, "relay_pin": 4 + n, "sensor_pin": 16 + n} for n in range(1, 7)]
    return parse_config(
        {
            "kiosk": {"id": KIOSK, "state_dir": str(tmp_path / "state")},
            "server": {"url": url},
            "scanner": {"kind": "sim"},
            "printer": {"kind": "sim"},
            "locker": {"kind": "sim", "compartments": compartments},
        },
        "test",
    )


def wait_for(predicate, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_core_recovers_first_then_syncs_identifies_and_redeems(tmp_path):
    server = ServerSide(tmp_path / "server")
    cfg = config(tmp_path, server.url)
    enroller = StoreServerClient.from_config(cfg.server)
    enroller.enroll(server.enrollment_code(), KIOSK)
    enroller.close()
    paper = VirtualPrinter(tmp_path / "paper")
    fast = SyncSettings(heartbeat_s=0.2, refresh_s=0.2, wheel_ids=("LUCKY",))
    try:
        core = build_core(cfg, printer=make_printer(cfg.printer, sim=paper), sync_settings=fast)
        crashed = new_transaction("crashed-1", TxnKind.REDEEM, "M0002", points=800, at=1.0,
                                  sku="GIFT-MUG", compartment=1)  # fmt: skip
        core.engine.save(crashed, TxnContext("M0**2"))  # as a crash before the hold call left it
        core.stop()

        core = build_core(cfg, printer=make_printer(cfg.printer, sim=paper), sync_settings=fast)
        changes = []
        seen = threading.Event()
        core.listeners.append(lambda what: (changes.append(what), seen.set()))
        core.start()
        assert core.engine.load("crashed-1")[0].state is TxnState.VOIDED
        assert seen.wait(10) and core.catalog is not None
        wait_for(lambda: "LUCKY" in core.wheels and core.sync.status().online)
        with server.store.db.transaction() as conn:
            code = members.issue_code(server.store.ledger, conn, server.store.signing_key, "M0002")[
                "code"
            ]
        who = core.identifier.identify(code)
        assert who.online and who.view.balance == 2700
        result = core.engine.redeem(member("M0002"), MUG)
        assert result.outcome is Outcome.DISPENSED and server.balance("M0002") == 1900
        core.stop()
    finally:
        paper.stop()
        server.stop()
