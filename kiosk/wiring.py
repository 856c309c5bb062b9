"""The composition root: config -> adapters -> services -> flows -> what the app needs.

The only place that constructs the kiosk's services (``kiosk run``, the demo rig and the tests
call it; screens and services never see what it builds, only the ports and flows it hands
them: tests/kiosk/test_layer_rules.py holds that).

``build_core(config)`` builds everything but the touch UI: the devices from the config (real
or simulated by ``kind``) unless given, so tests and the demo can pass simulators they keep a
handle on. ``KioskCore.start()`` starts the door alarms, runs start-up recovery (no member is
served before it) and then the sync worker; ``stop()`` undoes it all. ``build_ui(core, post=...)`` then builds the flows the screens
render (member session, staff flow, diagnostics flow, maintenance monitor) around the app's
``post`` (run on the UI thread), and hands each screen only what it needs (``KioskUi``).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from kiosk.config import KioskConfig
from kiosk.domain.catalog import Catalog, parse_catalog
from kiosk.domain.local_stock import catalog_as_it_stands
from kiosk.domain.offline import OfflineLimits
from kiosk.domain.receipts import Bilingual
from kiosk.domain.txn_receipts import StoreInfo
from kiosk.domain.wheel import Wheel
from kiosk.errors import KioskError
from kiosk.i18n import Translator
from kiosk.ports import DoorState, Locker, QrScanner, ReceiptPrinter
from kiosk.services.activity import ActivityFile, activity_path
from kiosk.services.compartment_flags import CompartmentFlags
from kiosk.services.diagnostics import DiagnosticsFlow, KioskReadings, install_error_buffer
from kiosk.services.door_alarms import DoorAlarms
from kiosk.services.health import Devices, maintenance_reason
from kiosk.services.identify import MemberIdentifier
from kiosk.services.kiosk_lock import KioskLock
from kiosk.services.maintenance_monitor import MaintenanceMonitor
from kiosk.services.receipt_queue import ReceiptQueue
from kiosk.services.recovery import forget_finished
from kiosk.services.restock_service import RestockService
from kiosk.services.session import MemberSession
from kiosk.services.staff_auth import StaffAuthenticator
from kiosk.services.staff_session import StaffFlow
from kiosk.services.sync_alerts import SyncAlertDesk
from kiosk.services.transactions import TransactionEngine
from kiosk.storage.catalog_cache import CatalogCache
from kiosk.storage.journal import Journal
from kiosk.storage.outbox import WAKE_EVENT_KINDS, Outbox
from kiosk.storage.pictures import PictureCache
from kiosk.storage.server_keys import ServerKeyFile
from kiosk.sync.client import StoreServerClient
from kiosk.sync.pictures import PictureFetcher
from kiosk.sync.records import SyncSettings, SyncStatus
from kiosk.sync.worker import SyncWorker

log = logging.getLogger(__name__)

KEEP_FINISHED_S = 7 * 24 * 3600  # finished transactions stay for `kiosk logs` this long


class SyncConnectivity:
    """Online/offline as the sync worker last saw it, and since when it is offline."""

    def __init__(self, clock=time.time) -> None:
        self._online = True  # optimistic until the first cycle: the first call tells
        self._since: dt.datetime | None = None
        self._clock = clock
        self._lock = threading.Lock()

    def changed(self, online: bool) -> None:
        with self._lock:
            self._online = online
            self._since = None if online else dt.datetime.fromtimestamp(self._clock(), dt.UTC)

    def online(self) -> bool:
        with self._lock:
            return self._online

    def offline_since(self) -> dt.datetime | None:
        with self._lock:
            return self._since


@dataclass
class KioskCore:
    config: KioskConfig
    journal: Journal
    client: StoreServerClient
    outbox: Outbox
    receipts: ReceiptQueue
    engine: TransactionEngine
    staff: StaffAuthenticator | None
    identifier: MemberIdentifier | None
    restock: RestockService
    sync: SyncWorker
    connectivity: SyncConnectivity
    printer: ReceiptPrinter
    locker: Locker
    scanner: QrScanner | None = None
    pictures: PictureCache | None = None  # the catalog's pictures, fetched by the sync worker
    catalog: Catalog | None = None
    catalog_fetched_at: float = 0.0  # when ``catalog`` left the server (epoch seconds)
    catalog_cache: CatalogCache | None = None
    wheels: dict[str, Wheel] = field(default_factory=dict)
    listeners: list = field(default_factory=list)  # called (from the sync thread) on changes
    alarms: DoorAlarms | None = None  # door events -> staff alert, buzzer, outbox

    def start(self) -> None:
        """Recover unfinished work first (never serve a member before), then sync."""
        if self.alarms is not None:  # first: a door forced during recovery is an alarm too
            self.alarms.start()
        for settled in self.engine.settle():
            log.info("start-up recovery: %s %s -> %s", settled.txn_id, settled.before.name,
                     settled.after.name)  # fmt: skip
        self.restock.report_unfinished()
        self.sync.start()

    def housekeeping(self, status: SyncStatus) -> None:
        """After each sync cycle (sync thread): retry voids/captures, drop finished records."""
        if not status.online:
            return
        try:
            self.engine.settle()
            forget_finished(self.engine.steps, older_than_s=KEEP_FINISHED_S, now=time.time())
            if self.identifier is not None:
                self.identifier.purge_expired()
        except KioskError as exc:
            log.warning("housekeeping deferred: %s", exc)

    def on_catalog(self, data: dict[str, Any], *, cached_at: float | None = None) -> None:
        """A catalog from the server (sync thread), or from the cache (``cached_at``: when it
        was fetched) at start-up."""
        try:
            catalog = parse_catalog(data)
        except KioskError as exc:
            where = "the cached catalog" if cached_at is not None else "catalog from the server"
            log.error("%s unusable, keeping the last one: %s", where, exc)
            return
        fetched_at = time.time() if cached_at is None else cached_at
        self.catalog, self.catalog_fetched_at = catalog, fetched_at
        self.engine.use_server_limits(catalog.offline)  # the caps the server checks uploads by
        if self.staff is not None and catalog.staff_lockout is not None:
            self.staff.use_policy(catalog.staff_lockout)  # one wrong-PIN rule: the server's
        self.restock.update_catalog(catalog)
        if cached_at is not None:
            log.info("catalog version %s from the cache until the server answers",
                     catalog.version)  # fmt: skip
        elif self.catalog_cache is not None:
            self.catalog_cache.save(data, fetched_at)
        self._tell("catalog")

    def catalog_view(self) -> Catalog | None:
        """The catalog as the compartments stand now: the last one with what it cannot know
        yet applied (gifts out since it was fetched, pending uploads and counts:
        kiosk/domain/local_stock.py)."""
        catalog, since = self.catalog, self.catalog_fetched_at
        if catalog is None:
            return None
        pending = [(e.kind, e.payload, e.at) for e in self.outbox.pending(len(self.outbox))]
        return catalog_as_it_stands(catalog, since, self.engine.transactions(), pending)

    def on_wheel(self, wheel_id: str, info: Wheel) -> None:
        self.wheels[wheel_id] = info
        self._tell("wheel")

    def _tell(self, what: str) -> None:
        for listener in list(self.listeners):
            try:
                listener(what)
            except Exception:  # a UI listener must never kill the sync thread
                log.exception("listener failed on %s", what)

    def stop(self) -> None:
        self.sync.stop()
        if self.alarms is not None:
            self.alarms.stop()
        if self.scanner is not None:
            self.scanner.stop()
        self.locker.close()
        self.printer.close()
        self.client.close()
        self.journal.close()


def build_core(
    config: KioskConfig,
    *,
    printer: ReceiptPrinter | None = None,
    locker: Locker | None = None,
    scanner: QrScanner | None = None,
    client: StoreServerClient | None = None,
    wheel_ids: tuple[str, ...] | None = None,
    sync_settings: SyncSettings | None = None,
) -> KioskCore:
    """Everything but the UI, from the config; devices given are used as they are."""
    from drivers.indicator import make_alarm_output
    from drivers.locker import make_locker  # the composition root may import drivers
    from drivers.printer import make_printer

    journal = Journal.open(
        config.kiosk.state_dir,
        safe_mode_on_corrupt=config.kiosk.safe_mode_on_corrupt_journal,
    )
    client = client or StoreServerClient.from_config(config.server)
    printer = printer or make_printer(config.printer)
    locker = locker or make_locker(config.locker)
    outbox = Outbox(journal)
    receipts = ReceiptQueue(journal, printer)
    connectivity = SyncConnectivity()
    store = StoreInfo(
        config.kiosk.id, config.kiosk.store_name_zh, config.kiosk.store_name_en,
        ZoneInfo(config.kiosk.timezone),
    )  # fmt: skip
    lock, flags = KioskLock(), CompartmentFlags(journal, outbox)  # shared: engine and restock
    engine = TransactionEngine(
        journal=journal, server=client, locker=locker, receipts=receipts, outbox=outbox,
        store=store, lock=lock, flags=flags, connectivity=connectivity,
        offline_limits=OfflineLimits.from_config(config.offline),
        payment_timeout_s=config.ui.payment_timeout_s,
    )  # fmt: skip
    keyfile = ServerKeyFile(config.server.public_key_file)
    key = keyfile.load()  # TrustedKeys, shared with the verifiers: on_keys swaps them
    identifier = staff = None
    if key is not None:
        identifier = MemberIdentifier(
            client, journal, key, now=time.time, cache_hours=config.offline.member_cache_hours
        )
        staff = StaffAuthenticator(
            client, journal, key,
            cache_days=config.offline.staff_pin_cache_days, tz=store.tz,
        )  # fmt: skip
    else:
        log.warning("no store public key at %s: enroll the kiosk (kiosk-provision)",
                    config.server.public_key_file)  # fmt: skip
    restock = RestockService(
        lock=lock, flags=flags, journal=journal, outbox=outbox, locker=locker, receipts=receipts,
        store=store, transactions=engine.transactions,
        idle_timeout_s=config.staff.restock_idle_s,
    )  # fmt: skip
    pictures = PictureCache(config.kiosk.state_dir / "pictures")
    core: KioskCore
    fetcher = PictureFetcher(client, pictures, on_change=lambda: core._tell("pictures"))
    sync = SyncWorker(
        client, outbox,
        settings=sync_settings or SyncSettings(wheel_ids=wheel_ids or (config.wheel.id,)),
        on_catalog=lambda data: core.on_catalog(data),
        fetch_pictures=fetcher.sync,
        on_wheel=lambda wid, info: core.on_wheel(wid, info),
        on_online_change=connectivity.changed,
        on_cycle=lambda status: core.housekeeping(status),
        on_keys=keyfile.update,
        on_revoked_staff=staff.set_revoked if staff is not None else None,
    )  # fmt: skip
    outbox.on_queued(lambda event: event.kind in WAKE_EVENT_KINDS and sync.wake())
    core = KioskCore(
        config, journal, client, outbox, receipts, engine, staff, identifier, restock, sync,
        connectivity, printer, locker, scanner, pictures,
        catalog_cache=CatalogCache(config.kiosk.state_dir / "catalog.json"),
    )  # fmt: skip
    core.alarms = DoorAlarms(
        locker, outbox, make_alarm_output(config.alarm, locker_kind=config.locker.kind),
        restocking=restock.restocking, now=lambda: dt.datetime.now(store.tz),
    )  # fmt: skip
    cached = core.catalog_cache.load()
    if cached is not None:  # offline from the start still offers gifts
        core.on_catalog(cached[0], cached_at=cached[1])
    return core


# ---- the flows and what the app needs ---------------------------------------------------------


@dataclass
class KioskUi:
    """What the touch app (kiosk/app.py) needs: the flows its screens render, the translator,
    and the narrow callables some screens need. ``start()`` once the screens are built."""

    config: KioskConfig
    tr: Translator
    session: MemberSession
    staff: StaffFlow
    diagnostics: DiagnosticsFlow
    maintenance: MaintenanceMonitor
    door_state: Callable[[int], DoorState]  # the result screen's "door open / closed"
    pictures: PictureCache | None  # the catalog's item pictures (path and generation)
    scanner: QrScanner | None  # the camera: codes go to the session; the technician's preview
    attract_preview: QrScanner | None  # the attract screen's preview (None: [ui] turns it off)
    alarms: DoorAlarms | None  # door alarms: the attract screen's staff alert
    post: Callable[[Callable[[], None]], None]  # runs a function on the UI thread
    activity: ActivityFile | None = None  # what `kiosk idle` reads (kiosk/services/activity.py)

    def start(self) -> None:
        """Codes from the camera to the session, door alarms to the attract screen, the
        maintenance checks and the activity file (UI built; main thread)."""
        if self.activity is not None:
            self.activity.start()
            self.session.subscribe(self.activity.show)
        if self.scanner is not None:
            self.scanner.start(lambda code: self.session.on_scan(code.payload))
        if (alarms := self.alarms) is not None:
            # read on the main thread when applied, so a late update never restores stale ones
            session = self.session
            alarms.subscribe(lambda _: self.post(lambda: session.set_alarms(alarms.active())))
            session.set_alarms(alarms.active())
        self.maintenance.start()

    def stop(self) -> None:
        self.maintenance.stop()
        if self.scanner is not None:
            self.scanner.stop()
        if self.activity is not None:
            self.activity.stop()


def devices_of(core: KioskCore) -> Devices:
    """The devices the health probes read (kiosk/services/health.py)."""
    numbers = tuple(c.number for c in core.config.locker.compartments)
    return Devices(core.printer, core.locker, numbers, core.scanner)


def readings_of(core: KioskCore) -> KioskReadings:
    """What the technician's report reads (kiosk/services/diagnostics.py)."""
    return KioskReadings(
        config=core.config, devices=devices_of(core), server_health=core.client.health,
        sync_status=core.sync.status, flagged=core.engine.flags.flagged,
        queued_receipts=lambda: len(core.receipts), journal=core.journal,
    )  # fmt: skip


def maintenance_check(
    core: KioskCore, texts: Translator | None = None
) -> Callable[[], Bilingual | None]:
    """The question the maintenance monitor asks: what must staff fix (None: nothing)?"""
    devices, journal = devices_of(core), core.journal
    return lambda: maintenance_reason(
        devices, safe_mode=journal.safe_mode_reason, enrolled=core.identifier is not None,
        texts=texts,
    )  # fmt: skip


def build_ui(
    core: KioskCore,
    *,
    post: Callable[[Callable[[], None]], None],
    tr: Translator | None = None,
    maintenance_every_s: float | None = 30.0,
) -> KioskUi:
    """The flows around a started core; ``post`` runs a function on the UI thread (the app's:
    ``kiosk.app.post``), which is how every flow's worker reaches the widgets."""
    cfg = core.config
    tr = tr or Translator(cfg.kiosk.language)
    session = MemberSession(
        identifier=core.identifier,
        engine=core.engine,
        catalog=core.catalog_view,  # the server's stock less what it has not heard of
        online=core.connectivity.online,
        post=post,
        idle_logout_s=cfg.ui.idle_logout_s,
        wheel_info=lambda: core.wheels.get(cfg.wheel.id),
        member_wheel_info=lambda member_id, member_session: core.client.wheel_info(
            cfg.wheel.id, member_id, member_session
        ),
        lookup_timeout_s=cfg.server.read_timeout_s,  # the client's bound
    )
    desk = SyncAlertDesk(
        core.outbox.alerts, core.outbox.acknowledge, tr, lambda: core.restock.items
    )
    staff = StaffFlow(
        authenticate=core.staff.authenticate if core.staff is not None else None,  # not enrolled
        restock=core.restock, receipts=core.receipts, flagged=core.engine.flags.flagged,
        compartments=[c.number for c in cfg.locker.compartments], texts=tr, post=post,
        on_exit=session.logout, alerts=desk, idle_s=cfg.staff.idle_logout_s,
    )  # fmt: skip
    diagnostics = DiagnosticsFlow(
        readings_of(core),
        post=post,
        on_exit=session.logout,
        errors=install_error_buffer(),
        idle_s=cfg.staff.technician_idle_s,
    )

    def deliver(reason: Bilingual | None) -> None:  # from the monitor's thread
        post(lambda: session.set_maintenance(reason))

    monitor = MaintenanceMonitor(maintenance_check(core, tr), deliver, maintenance_every_s)
    return KioskUi(
        config=cfg, tr=tr, session=session, staff=staff, diagnostics=diagnostics,
        maintenance=monitor, door_state=core.locker.door_state, pictures=core.pictures,
        scanner=core.scanner,
        attract_preview=core.scanner if cfg.ui.camera_preview else None,
        alarms=core.alarms, post=post,
        activity=ActivityFile(activity_path(cfg.kiosk.state_dir)),
    )  # fmt: skip
