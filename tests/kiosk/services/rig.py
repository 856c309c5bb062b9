"""A kiosk on a bench: the real store server on loopback, the real client, journal, simulated
locker (gpiozero MockFactory) and virtual printer (pty), wired into the transaction engine.

Used by the engine's integration tests and the crash harness (``bench/txn_crash.py``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from drivers.locker import make_locker
from drivers.printer import make_printer
from drivers.printer.sim_printer import VirtualPrinter
from kiosk.config import parse_config
from kiosk.domain.offline import OfflineLimits
from kiosk.domain.receipts import Bilingual
from kiosk.domain.txn_receipts import StoreInfo
from kiosk.domain.wheel import Wheel
from kiosk.ports import DoorState
from kiosk.services.compartment_flags import CompartmentFlags
from kiosk.services.kiosk_lock import KioskLock
from kiosk.services.receipt_queue import ReceiptQueue
from kiosk.services.restock_service import RestockService
from kiosk.services.transactions import ItemChoice, Member, TransactionEngine
from kiosk.storage.journal import Journal
from kiosk.storage.outbox import Outbox
from kiosk.sync.client import RetryPolicy, StoreServerClient
from storeserver import codes, demo, kiosks, technicians
from storeserver.clock import ManualClock
from storeserver.payments import SimulatedPaymentProvider
from storeserver.runner import ServerThread
from storeserver.store import Store, StoreSettings

KIOSK = "kiosk-01"
TZ = ZoneInfo("Asia/Shanghai")
STORE = StoreInfo(KIOSK, "测试门店", "Test store", TZ)
MUG = ItemChoice("GIFT-MUG", Bilingual("保温杯", "Thermal mug"), 800, compartment=1)
TOTE = ItemChoice("GIFT-TOTE", Bilingual("帆布袋", "Canvas tote bag"), 300, compartment=2)
EARBUDS = ItemChoice(
    "GIFT-EARBUDS", Bilingual("蓝牙耳机", "Bluetooth earbuds"), 2000, cash_cents=4900, compartment=4
)
COUPON = ItemChoice(
    "CPN-10", Bilingual("10元代金券", "¥10 off coupon"), 500, coupon_value_cents=1000
)
LIST = {"M0001": 750, "M0002": 2700, "M0003": 6500, "M0004": 23000, "M0005": 80}
# segments of the demo wheel LUCKY (storeserver/demo.py SEGMENTS)
COUPON_PRIZE, TOTE_PRIZE = 3, 4


def masked(member_id: str) -> str:
    return member_id[:2] + "**" + member_id[-1]


def kiosk_config(door_open_timeout_s: float = 0.5, door_close_timeout_s: float = 120.0):
    compartments = [{"number": n, "relay_pin": 4 + n, "sensor_pin": 16 + n} for n in range(1, 7)]
    cfg = parse_config(
        {
            "kiosk": {"id": KIOSK},
            "server": {"url": "http://127.0.0.1:1"},
            "printer": {"kind": "sim"},
            "locker": {
                "kind": "sim",
                "compartments": compartments,
            },
        },
        "rig",
    )
    # below the config's floor of 1 s so a jam costs tests half a second, not one (and a door
    # left open, door alarm tests, well under the 120 s of a kiosk)
    locker = dataclasses.replace(
        cfg.locker,
        door_open_timeout_s=door_open_timeout_s,
        door_close_timeout_s=door_close_timeout_s,
    )
    return dataclasses.replace(cfg, locker=locker)


@dataclass
class Link:
    """Connectivity the tests flip by hand (the sync worker provides it in the app)."""

    up: bool = True
    since: dt.datetime | None = None

    def online(self) -> bool:
        return self.up

    def offline_since(self) -> dt.datetime | None:
        return self.since

    def cut(self) -> None:
        self.up, self.since = False, dt.datetime.now(dt.UTC)


class ServerSide:
    """The store with demo data on a manual clock, served on 127.0.0.1:0."""

    def __init__(self, folder: Path, *, rate_limits: dict | None = None) -> None:
        """``rate_limits``: the store's per-token limits (None: the defaults; {}: none)."""
        # starts at the real time: the kiosk checks member codes against its own clock
        self.clock = ManualClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
        folder.mkdir(parents=True, exist_ok=True)
        settings = (
            StoreSettings() if rate_limits is None else StoreSettings(rate_limits=rate_limits)
        )
        # the member's phone "pays" through the simulated provider, which must be asked for
        self.store = Store(
            folder / "store.db",
            clock=self.clock,
            provider=SimulatedPaymentProvider(),
            settings=settings,
        )
        demo.seed(self.store, [KIOSK])
        self.thread = ServerThread(self.store, "127.0.0.1", 0)
        self.thread.start()
        self.url = self.thread.url

    def code(self, member_id: str) -> str:
        """A fresh signed code of the member, as their phone app shows it."""
        now = int(self.clock.now().timestamp())
        return codes.issue(self.store.signing_key, codes.CodeKind.MEMBER, member_id, now)

    def enrollment_code(self, kiosk_id: str = KIOSK, *, replace: bool | None = None) -> str:
        """A one-time code for ``kiosk_id``; ``replace`` lets it take over an enrolled id (None:
        when it is enrolled, as a test's fresh kiosk folder for the same id needs)."""
        with self.store.db.transaction() as conn:
            if replace is None:
                replace = kiosks.is_enrolled(conn, kiosk_id)
            return kiosks.new_enrollment_code(conn, self.store.clock, kiosk_id, replace=replace)

    def technician_code(self, kiosk_id: str = KIOSK, minutes: int = 15) -> str:
        """A technician code issued by the server for ``kiosk_id`` (enrolled), as the CLI does."""
        with self.store.db.transaction() as conn:
            return technicians.issue_technician_code(
                conn, self.clock, self.store.signing_key, kiosk_id, minutes, "tests"
            ).code

    def balance(self, member_id: str) -> int:
        with self.store.db.transaction() as conn:
            return self.store.ledger.balance(conn, member_id, self.store.ledger.today())

    def stock(self, number: int) -> int:
        row = (
            self.store.db.connection()
            .execute(
                "SELECT stock FROM compartments WHERE kiosk_id = ? AND number = ?", (KIOSK, number)
            )
            .fetchone()
        )
        return row["stock"]

    def redemptions(self) -> dict[str, str]:
        rows = self.store.db.connection().execute("SELECT txn_id, state FROM redemptions")
        return {r["txn_id"]: r["state"] for r in rows}

    def void_reason(self, txn_id: str) -> str | None:
        row = self.store.db.connection().execute(
            "SELECT void_reason FROM redemptions WHERE txn_id = ?", (txn_id,)
        )
        return row.fetchone()["void_reason"]

    def only_prize(self, idx: int, wheel_id: str = "LUCKY") -> None:
        """Make segment ``idx`` the one prize the wheel can draw: every other segment is out
        of stock, and an out-of-stock prize leaves the draw (storeserver/wheel.py)."""
        with self.store.db.transaction() as conn:
            conn.execute(
                "UPDATE wheel_segments SET stock = 0 WHERE wheel_id = ? AND idx != ?",
                (wheel_id, idx),
            )
            conn.execute(
                "UPDATE wheel_segments SET stock = MAX(stock, 1) WHERE wheel_id = ? AND idx = ?",
                (wheel_id, idx),
            )

    def prize_stock(self, idx: int, wheel_id: str = "LUCKY") -> int | None:
        row = (
            self.store.db.connection()
            .execute(
                "SELECT stock FROM wheel_segments WHERE wheel_id = ? AND idx = ?", (wheel_id, idx)
            )
            .fetchone()
        )
        return row["stock"]

    def payment_of(self, txn_id: str) -> dict | None:
        row = (
            self.store.db.connection()
            .execute("SELECT * FROM payments WHERE txn_id = ?", (txn_id,))
            .fetchone()
        )
        return dict(row) if row else None

    def simulate_paid(self, payment_id: str) -> None:
        with self.store.db.transaction() as conn:
            self.store.payments.mark_paid(conn, payment_id)

    def stop(self) -> None:
        self.thread.stop()
        self.store.close()


@dataclass
class KioskSide:
    """The kiosk process's objects; ``reopen()`` is a restart after a crash."""

    folder: Path
    server_url: str
    enrollment: str | None = None
    door_open_timeout_s: float = 0.5
    door_close_timeout_s: float = 120.0
    printer: VirtualPrinter | None = None
    link: Link = field(default_factory=Link)
    payment_timeout_s: float = 30.0
    read_timeout_s: float = 5.0
    ids: list[str] = field(default_factory=list)
    codes: Callable[[str], str] | None = None  # the member's phone: a fresh code (ServerSide.code)

    def __post_init__(self) -> None:
        self.cfg = kiosk_config(self.door_open_timeout_s, self.door_close_timeout_s)
        if self.printer is None:
            self.printer = VirtualPrinter(self.folder / "paper")
        self.client = StoreServerClient(
            self.server_url,
            token_file=self.folder / "state" / "token",
            public_key_file=self.folder / "state" / "server_key.pub",
            retry=RetryPolicy(attempts=3, base_delay_s=0.05, max_delay_s=0.2),
            rng=random.Random(3),
            connect_timeout_s=2.0,
            read_timeout_s=self.read_timeout_s,
        )
        if self.enrollment:
            self.client.enroll(self.enrollment, KIOSK)
        self.locker = make_locker(self.cfg.locker)
        self.printer_port = make_printer(self.cfg.printer, sim=self.printer)
        self._open_engine()

    def _open_engine(self) -> None:
        self.journal = Journal.open(self.folder / "state")
        self.outbox = Outbox(self.journal)
        self.receipts = ReceiptQueue(self.journal, self.printer_port)
        self.lock, self.flags = KioskLock(), CompartmentFlags(self.journal, self.outbox)
        self.engine = TransactionEngine(
            journal=self.journal,
            server=self.client,
            locker=self.locker,
            receipts=self.receipts,
            outbox=self.outbox,
            store=STORE,
            lock=self.lock,
            flags=self.flags,
            connectivity=self.link,
            offline_limits=OfflineLimits(500, 1000, 8),
            payment_timeout_s=self.payment_timeout_s,
            poll_interval_s=0.05,
        )

    def restock_service(self, **options) -> RestockService:
        """A restock service on this kiosk's lock, flags, journal and devices, as the
        composition root wires it (``options``: catalog, poll_s, clock, ...)."""
        return RestockService(
            lock=self.lock, flags=self.flags, journal=self.journal, outbox=self.outbox,
            locker=self.locker, receipts=self.receipts, store=STORE,
            transactions=self.engine.transactions, **options,
        )  # fmt: skip

    def member(
        self,
        member_id: str,
        balance: int | None = None,
        *,
        code: str | None = None,
        online: bool = True,
    ) -> Member:
        """The member as the kiosk identifies them: a fresh code of theirs resolved by the
        store server, whose member session their holds and spins carry (and whose code an
        offline redemption uploads). ``balance``: what the kiosk believes (offline checks).
        ``online=False``: scanned while the server is away: the code only, no session."""
        if code is None and self.codes is not None:
            code = self.codes(member_id)
        session = None
        if online:
            assert code is not None, "KioskSide(codes=server.code) to identify members"
            session = self.client.resolve_member(code)["member_session"]
            assert session, f"the store server opened no member session for {member_id}"
        return Member(
            member_id, masked(member_id), balance or LIST[member_id], session=session, code=code
        )

    def wheel(self, wheel_id: str = "LUCKY", **shown: object) -> Wheel:
        """The wheel as the kiosk syncs it (cost, seed commitments); ``shown`` replaces what
        the member was shown (e.g. ``cost_points=90``: a cost the server no longer asks)."""
        return dataclasses.replace(self.client.wheel_info(wheel_id), **shown)  # type: ignore[arg-type]

    def reopen(self) -> None:
        """Drop the engine and journal as a crash would, and start again on the same files."""
        self.journal.close()
        self._open_engine()

    @property
    def sim(self):
        return self.locker.sim

    def shut(self, number: int) -> None:
        """The member (or staff) shuts an open door; returns once the locker reads it shut
        (debounced, about 70 ms; until then it refuses to pulse the door again)."""
        if not self.sim.is_open(number):
            return
        self.sim.close_door(number)
        deadline = time.monotonic() + 5
        while self.locker.door_state(number) is not DoorState.CLOSED:
            assert time.monotonic() < deadline, f"compartment {number} never read shut"
            time.sleep(0.01)

    def pulses(self, number: int) -> int:
        """How many times compartment ``number``'s solenoid was energised."""
        return self.sim.door(number).pulses

    def close(self) -> None:
        self.journal.close()
        self.locker.close()
        self.printer_port.close()
        self.client.close()
        self.printer.stop()


def pay_when_shown(server: ServerSide, kiosk: KioskSide) -> threading.Event:
    """Pay the cash part from 'the member's phone' once the kiosk shows the QR."""
    done = threading.Event()

    def progress(p) -> None:
        if p.pay_url and not done.is_set():
            done.set()
            server.simulate_paid(p.pay_url.rsplit("/", 1)[-1])

    done.progress = progress  # type: ignore[attr-defined]
    return done
