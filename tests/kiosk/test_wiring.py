"""The wired core (config -> adapters -> services) against the real server on loopback."""

from __future__ import annotations

import threading
import time

import pytest

from drivers.printer import make_printer
from drivers.printer.sim_printer import VirtualPrinter
from kiosk.config import parse_config
from kiosk.demo.slowness import scaled
from kiosk.domain.receipts import Bilingual
from kiosk.domain.transaction import TxnKind, TxnState, new_transaction
from kiosk.domain.txn_receipts import TxnContext
from kiosk.ports import DoorState
from kiosk.services.transactions import ItemChoice, Member
from kiosk.services.txn_steps import Outcome
from kiosk.sync.client import StoreServerClient
from kiosk.sync.records import SyncSettings
from kiosk.wiring import build_core, build_ui
from storeserver import members

from .services.rig import KIOSK, MUG, TOTE, ServerSide


def config(tmp_path, url, **sections):
    """A kiosk config on simulators; the window is the panel's 800x480, not the screen."""
    sections["ui"] = {"fullscreen": False, **sections.get("ui", {})}
    compartments = [{"number": n, "relay_pin": 4 + n, "sensor_pin": 16 + n} for n in range(1, 7)]
    return parse_config(
        {
            "kiosk": {"id": KIOSK, "state_dir": str(tmp_path / "state")},
            "server": {"url": url},
            "scanner": {"kind": "sim"},
            "printer": {"kind": "sim"},
            "locker": {"kind": "sim", "compartments": compartments},
            **sections,
        },
        "test",
    )


def wait_for(predicate, timeout_s=10.0):
    deadline = time.monotonic() + scaled(timeout_s)  # KIOSK_SLOW_FACTOR: a slow machine
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def enrolled(tmp_path):
    """The store server on loopback with this kiosk enrolled in tmp_path/state, and the
    virtual printer's paper."""
    server = ServerSide(tmp_path / "server")
    enroller = StoreServerClient.from_config(config(tmp_path, server.url).server)
    enroller.enroll(server.enrollment_code(), KIOSK)
    enroller.close()
    paper = VirtualPrinter(tmp_path / "paper")
    yield server, paper
    paper.stop()
    server.stop()


OFFLINE_URL = "http://127.0.0.1:1"  # nothing listens there: the store is offline
UMBRELLA = ItemChoice("GIFT-UMBRELLA", Bilingual("晴雨伞", "Umbrella"), 600, compartment=5)


def scanned(core, server, member_id: str) -> Member:
    """The member as the core identifies a fresh code of theirs (online: with its session)."""
    who = core.identifier.identify(server.code(member_id))
    view = who.view
    return Member(
        view.member_id, view.name_masked, view.balance, session=who.session, code=who.code_text
    )


def umbrellas(core) -> int:
    """Umbrellas the screens would offer (the only one is in compartment 5)."""
    return next(i.stock for i in core.catalog_view().items if i.sku == "GIFT-UMBRELLA")


def test_core_recovers_first_then_syncs_identifies_and_redeems(tmp_path, enrolled):
    server, paper = enrolled
    cfg = config(tmp_path, server.url)
    fast = SyncSettings(heartbeat_s=0.2, refresh_s=0.2, wheel_ids=("LUCKY",))
    core = build_core(cfg, printer=make_printer(cfg.printer, sim=paper), sync_settings=fast)
    crashed = new_transaction("crashed-1", TxnKind.REDEEM, "M0002", points=800, at=1.0,
                              sku="GIFT-MUG", compartment=1)  # fmt: skip
    core.engine.steps.save(crashed, TxnContext("M0**2"))  # as a crash before the hold call left it
    core.stop()

    core = build_core(cfg, printer=make_printer(cfg.printer, sim=paper), sync_settings=fast)
    changes = []
    seen = threading.Event()
    core.listeners.append(lambda what: (changes.append(what), seen.set()))
    core.start()
    try:
        assert core.engine.steps.load("crashed-1")[0].state is TxnState.VOIDED
        assert seen.wait(10) and core.catalog is not None
        wait_for(lambda: "LUCKY" in core.wheels and core.sync.status().online)
        with server.store.db.transaction() as conn:
            code = members.issue_code(server.store.ledger, conn, server.store.signing_key, "M0002")[
                "code"
            ]
        who = core.identifier.identify(code)
        assert who.online and who.view.balance == 2700 and who.session
        member = Member("M0002", who.view.name_masked, 2700, session=who.session)
        result = core.engine.redeem(member, MUG)
        assert result.outcome is Outcome.DISPENSED and server.balance("M0002") == 1900
    finally:
        core.stop()


def test_restarted_offline_the_cached_catalog_offers_gifts_and_counts_what_went_out(
    tmp_path, enrolled
):
    """A power cut takes the store's network down: the kiosk restarts offline, offers the gifts
    of its last catalog, and a compartment emptied offline is not offered again (nor after
    another restart) until the server, back, has the upload and says so itself."""
    server, paper = enrolled
    fast = SyncSettings(heartbeat_s=0.2, refresh_s=0.2, wheel_ids=("LUCKY",))
    # the store's cap, which the catalog brings the kiosk (its config's would not count)
    server.store.settings.offline_member_daily_points = 2000

    def kiosk(url: str):
        cfg = config(tmp_path, url, offline={"per_member_daily_points": 2000})
        return build_core(cfg, printer=make_printer(cfg.printer, sim=paper), sync_settings=fast)

    core = kiosk(server.url)
    core.start()
    wait_for(lambda: core.catalog is not None)
    core.stop()
    assert (tmp_path / "state" / "catalog.json").exists()

    core = kiosk(OFFLINE_URL)
    try:
        assert core.catalog is not None and umbrellas(core) == 1  # before any sync
        core.start()
        wait_for(lambda: not core.connectivity.online())
        assert core.engine.offline_limits.per_member_daily_points == 2000  # the server's
        # identified offline (the code verified on the kiosk): no session, the code goes along
        member = Member("M0002", "M0**2", 2700, code=server.code("M0002"))
        result = core.engine.redeem(member, UMBRELLA)
        assert result.outcome is Outcome.DISPENSED_UNCONFIRMED and result.txn.offline
        assert umbrellas(core) == 0  # the server's catalog still says 1
        assert next(i.stock for i in core.catalog.items if i.sku == "GIFT-UMBRELLA") == 1
    finally:
        core.stop()

    core = kiosk(OFFLINE_URL)  # restarted again, still offline
    try:
        assert umbrellas(core) == 0
    finally:
        core.stop()

    core = kiosk(server.url)  # the network is back: upload, then the server's own count
    core.start()
    try:
        wait_for(lambda: len(core.outbox) == 0 and server.stock(5) == 0)
        wait_for(lambda: next(i.stock for i in core.catalog.items
                              if i.sku == "GIFT-UMBRELLA") == 0)  # fmt: skip
        assert umbrellas(core) == 0 and server.balance("M0002") == 2100
    finally:
        core.stop()


def test_a_gift_given_out_online_since_the_catalog_is_not_offered_again_offline(tmp_path, enrolled):
    """The last umbrella goes out online; the network drops before the next catalog read
    (which would say 0): the kiosk, offline and even restarted, does not offer it."""
    server, paper = enrolled
    slow = SyncSettings(heartbeat_s=0.2, refresh_s=3600, wheel_ids=("LUCKY",))  # no re-read
    cfg = config(tmp_path, server.url)
    core = build_core(cfg, printer=make_printer(cfg.printer, sim=paper), sync_settings=slow)
    core.start()
    try:
        wait_for(lambda: core.catalog is not None)
        assert umbrellas(core) == 1
        result = core.engine.redeem(scanned(core, server, "M0002"), UMBRELLA)
        assert result.outcome is Outcome.DISPENSED and server.stock(5) == 0
        assert umbrellas(core) == 0  # the catalog read before it still says 1
    finally:
        core.stop()
    offline = config(tmp_path, OFFLINE_URL)
    core = build_core(offline, printer=make_printer(cfg.printer, sim=paper), sync_settings=slow)
    try:
        assert core.catalog is not None and umbrellas(core) == 0
    finally:
        core.stop()


def test_a_count_wakes_the_sync_worker_and_the_stamp_keeps_a_gift_held_before_it(
    tmp_path, enrolled
):
    """The worker's next cycle is an hour away; a staff count is uploaded at once anyway. A tote
    taken just before the count (its hold after the last catalog read, so only the hold's answer,
    journalled as the transaction's hold_seq, tells the stamp) is not taken off the count again."""
    from kiosk.services.staff_auth import StaffSession

    server, paper = enrolled
    slow = SyncSettings(heartbeat_s=3600, refresh_s=3600, wheel_ids=("LUCKY",))
    cfg = config(tmp_path, server.url)
    core = build_core(cfg, printer=make_printer(cfg.printer, sim=paper), sync_settings=slow)
    core.start()
    try:
        wait_for(lambda: core.catalog is not None and core.sync.status().last_ok_at is not None)
        assert core.engine.redeem(scanned(core, server, "M0002"), TOTE).outcome is Outcome.DISPENSED
        core.locker.sim.close_door(2)
        wait_for(lambda: core.locker.door_state(2) is DoorState.CLOSED)
        assert server.stock(2) == 4
        session = core.restock.start(StaffSession("S0001", "王店长", online=False))
        session.open_compartment(2)
        core.locker.sim.close_door(2)
        assert session.wait_closed(timeout_s=5)
        session.enter_count(2, "GIFT-TOTE", 6)  # 4 + 2 added: the count saw the tote go
        session.finish()
        wait_for(lambda: len(core.outbox) == 0)  # within seconds, not the hour
        assert server.stock(2) == 6
    finally:
        core.stop()


def test_the_core_keeps_the_servers_revoked_staff_list_for_its_staff_sign_in(tmp_path, enrolled):
    from kiosk.services.staff_auth import PIN_TABLE, REVOKED_KEY, REVOKED_TABLE
    from storeserver import staff

    server, paper = enrolled
    with server.store.db.transaction() as conn:
        staff.set_active(conn, "S0002", False)
    cfg = config(tmp_path, server.url, offline={"staff_pin_cache_days": 0})
    fast = SyncSettings(heartbeat_s=0.2, refresh_s=3600, wheel_ids=())
    core = build_core(cfg, printer=make_printer(cfg.printer, sim=paper), sync_settings=fast)
    core.start()
    try:
        wait_for(lambda: core.journal.get(REVOKED_TABLE, REVOKED_KEY) is not None)
        assert core.journal.get(REVOKED_TABLE, REVOKED_KEY)["ids"] == ["S0002"]
        with server.store.db.transaction() as conn:
            code = staff.issue_badge(conn, server.store.clock, server.store.signing_key, "S0001")
        assert core.staff.authenticate(code["code"], "246810").online
        assert core.journal.get(PIN_TABLE, "S0001") is None  # staff_pin_cache_days = 0
    finally:
        core.stop()


def test_the_core_counts_offline_pins_by_the_servers_rule_from_its_catalog(
    tmp_path, enrolled, monkeypatch
):
    from storeserver import staff_lockout as server_rule

    monkeypatch.setattr(server_rule, "IN_A_ROW", 3)
    monkeypatch.setattr(server_rule, "LOCK_STEPS", (server_rule.LOCK_STEPS[0],))
    server, paper = enrolled
    cfg = config(tmp_path, server.url)
    fast = SyncSettings(heartbeat_s=0.2, refresh_s=0.2, wheel_ids=())
    core = build_core(cfg, printer=make_printer(cfg.printer, sim=paper), sync_settings=fast)
    assert core.staff.policy.in_a_row == 5  # nothing from the server yet
    core.start()
    try:
        wait_for(lambda: core.catalog is not None)
        assert core.staff.policy.in_a_row == 3 and core.staff.policy.lock_steps_s == (300.0,)
    finally:
        core.stop()


def test_build_ui_wires_the_flows_to_the_core_and_the_monitor_to_the_session(tmp_path, enrolled):
    """The composition root's second half: what the app is handed is the core's, and the
    maintenance monitor's answers reach the member session through ``post``."""
    from kiosk.services.ui_state import Screen

    server, paper = enrolled
    cfg = config(tmp_path, server.url, ui={"camera_preview": False})
    core = build_core(cfg, printer=make_printer(cfg.printer, sim=paper))
    core.start()
    posted: list = []
    ui = build_ui(core, post=lambda fn: (posted.append(fn), fn()), maintenance_every_s=None)
    try:
        assert ui.staff.restock is core.restock and ui.staff.receipts is core.receipts
        assert ui.diagnostics.readings.journal is core.journal
        assert ui.pictures is core.pictures and ui.attract_preview is None
        paper.set_cover_open(True)  # the printer cannot print: out of service
        ui.start()
        wait_for(lambda: ui.session.state.maintenance is not None)
        assert ui.session.state.screen is Screen.MAINTENANCE and posted
        assert "cover" in ui.session.state.maintenance.en
        paper.set_cover_open(False)
        ui.maintenance.check_now()
        wait_for(lambda: ui.session.state.maintenance is None)
        assert ui.session.state.screen is Screen.ATTRACT
        core.locker.sim.force_open(3)
        wait_for(lambda: ui.door_state(3) is DoorState.OPEN)  # the result screen's door
    finally:
        ui.stop()
        core.stop()


def test_the_timeouts_come_from_the_config(tmp_path, enrolled):
    """[ui] payment_timeout_s and [staff] reach the engine, restock and the staff and
    technician flows: no default argument decides them."""
    server, paper = enrolled
    staff = {"idle_logout_s": 45, "restock_idle_s": 300, "technician_idle_s": 200}
    cfg = config(tmp_path, server.url, ui={"payment_timeout_s": 90}, staff=staff)
    core = build_core(cfg, printer=make_printer(cfg.printer, sim=paper))
    ui = build_ui(core, post=lambda fn: fn(), maintenance_every_s=None)
    try:
        assert core.engine.payment.timeout_s == 90
        assert core.restock.idle_timeout_s == 300
        assert ui.staff.idle_s == 45 and ui.diagnostics.idle_s == 200
    finally:
        ui.stop()
        core.stop()
