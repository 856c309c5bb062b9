"""``kiosk demo``: the whole kiosk on one machine, with the store server and simulated devices.

``DemoRig`` starts the demo store server behind a relay that can cut the network for real
(``kiosk.demo.network.DemoServer``), writes a kiosk config with the simulated scanner, printer and
locker, enrolls, builds and starts the core (kiosk/wiring.py, as ``kiosk run`` does). Then
either the touch app opens in a window with simulator keys (``KEYS``), or, with ``--tour DIR``
or without a display, the scripted tour (``kiosk.demo.tour``) runs offscreen through every
screen and writes a screenshot per step and the printed receipts to DIR.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import KioskError

log = logging.getLogger(__name__)

KIOSK_ID = "kiosk-01"
DEFAULT_PORT = 8080
COMPARTMENTS = range(1, 7)  # as storeserver.demo.COMPARTMENTS
JAM_DOOR = 1

# the simulator keys: what the person at the demo presses instead of showing a phone or
# opening the cabinet (operator help, English only: it is not part of the kiosk's UI)
KEYS = {
    "1-5": "show member M0001..M0005's code",
    "S": "show a staff badge (PIN {pin})",
    "T": "show a technician code",
    "C": "close every open door",
    "J": "jam door 1 at its next pulse",
    "P": "take out / put back the printer's paper",
    "M": "open / close the printer cover (maintenance)",
    "N": "cut / restore the network",
    "Y": "pay the pending payment",
}


@dataclass(frozen=True)
class RigTiming:
    """How fast the rig's kiosk notices things: the tour wants seconds, not minutes."""

    heartbeat_s: float = 2.0
    refresh_s: float = 10.0
    backoff_cap_s: float = 4.0
    door_open_timeout_s: int = 3
    idle_logout_s: int = 60
    scanner_fps: int = 5


TOUR_TIMING = RigTiming(
    heartbeat_s=0.5, refresh_s=2.0, backoff_cap_s=1.0, door_open_timeout_s=1, idle_logout_s=120
)


def kiosk_toml(state_dir: Path, server_url: str, timing: RigTiming) -> str:
    """The demo kiosk's configuration: simulated scanner, printer and locker."""
    doors = "".join(
        f"\n[[locker.compartments]]\nnumber = {n}\nrelay_pin = {4 + n}\nsensor_pin = {16 + n}\n"
        for n in COMPARTMENTS
    )
    return (
        textwrap.dedent(f"""\
        # written by `kiosk demo`: a kiosk on simulators, talking to the demo store server
        [kiosk]
        id = "{KIOSK_ID}"
        store_name_zh = "示范门店"
        store_name_en = "Demo Store"
        state_dir = "{state_dir}"

        [server]
        url = "{server_url}"
        connect_timeout_s = 1
        read_timeout_s = 5

        [scanner]
        kind = "sim"
        fps = {timing.scanner_fps}
        decoder = "pyzbar"  # the demo's codes are typed in; zxing-cpp warns of leaks at exit

        [printer]
        kind = "sim"

        [locker]
        kind = "sim"
        door_open_timeout_s = {timing.door_open_timeout_s}

        [ui]
        idle_logout_s = {timing.idle_logout_s}
        fullscreen = false
        """)
        + doors
    )


class DemoRig:
    """Store server + relay + a started kiosk core on simulators, and the simulator controls."""

    def __init__(self, folder: Path, port: int = 0, timing: RigTiming = RigTiming()) -> None:
        from drivers.camera import make_scanner
        from drivers.printer import make_printer
        from drivers.printer.sim_printer import VirtualPrinter
        from kiosk.config import load_config
        from kiosk.demo.network import DemoServer
        from kiosk.sync.client import RetryPolicy, StoreServerClient
        from kiosk.sync.worker import SyncSettings
        from kiosk.wiring import build_core

        self.folder = folder
        self.server = server = DemoServer(folder, KIOSK_ID, port)
        self.config_path = folder / "kiosk.toml"
        self.config_path.write_text(kiosk_toml(folder / "kiosk", server.relay.url, timing))
        cfg = load_config(self.config_path)
        # quick retries: a cut network shows in a second, not after the production back-off
        client = StoreServerClient.from_config(
            cfg.server, retry=RetryPolicy(attempts=2, base_delay_s=0.1, max_delay_s=0.3)
        )
        if not (cfg.server.token_file.exists() and cfg.server.public_key_file.exists()):
            client.enroll(server.enrollment_code(), KIOSK_ID)
        self.paper = VirtualPrinter(folder / "receipts", paper_mm=cfg.printer.paper_mm)
        self.scanner = make_scanner(cfg.scanner)
        sync = SyncSettings(
            heartbeat_s=timing.heartbeat_s, refresh_s=timing.refresh_s,
            backoff_cap_s=timing.backoff_cap_s, wheel_ids=(cfg.wheel.id,),
        )  # fmt: skip
        self.core = build_core(
            cfg, printer=make_printer(cfg.printer, sim=self.paper), scanner=self.scanner,
            client=client, sync_settings=sync,
        )  # fmt: skip
        self._jam_armed_at: int | None = None
        self.paper_loaded, self.cover_open = True, False
        self.core.start()

    # ---- the kiosk's devices ---------------------------------------------------------------
    def present(self, payload: str) -> None:
        """Hold a code in front of the (simulated) camera."""
        self.scanner.present(payload)

    @property
    def locker_sim(self):
        return self.core.locker.sim

    def close_doors(self) -> list[int]:
        sim = self.locker_sim
        shut = [n for n in sim.doors if sim.is_open(n)]
        for n in shut:
            sim.close_door(n)
        return shut

    def arm_jam(self, number: int = JAM_DOOR) -> None:
        """Door ``number`` ignores its next pulse, then works again (``check_jam``)."""
        self.locker_sim.jam(number)
        self._jam_armed_at = self.locker_sim.door(number).pulses

    def check_jam(self, number: int = JAM_DOOR) -> None:
        """Call now and then: un-jams the door once a pulse has met the jam."""
        armed = self._jam_armed_at
        if armed is not None and self.locker_sim.door(number).pulses > armed:
            self.clear_jam(number)

    def clear_jam(self, number: int = JAM_DOOR) -> None:
        self.locker_sim.jam(number, False)
        self._jam_armed_at = None

    def set_paper(self, loaded: bool) -> None:
        from kiosk.ports import PaperState

        self.paper.set_paper(PaperState.OK if loaded else PaperState.OUT)
        self.paper_loaded = loaded

    def set_cover(self, open_: bool) -> None:
        self.paper.set_cover_open(open_)
        self.cover_open = open_

    def stop(self) -> None:
        for step in (self.core.stop, self.paper.stop, self.server.stop):
            try:
                step()
            except Exception:  # shut the rest down anyway
                log.exception("demo shutdown: %s failed", step)

    def banner(self) -> str:
        """Where everything is, the demo members, and how to reach the API by hand."""
        server = self.server
        lines = [
            f"Store server (demo data in {self.folder}) on {server.url}, with SIMULATED "
            "payments: anyone can mark a payment paid (the demo only)",
            f"Kiosk config {self.config_path}; the kiosk reaches the server through the relay "
            f"{server.relay.url} (key N cuts it); receipts in {self.paper.out_dir}",
            "\nDemo members:",
            *(f"  {m['id']}  {m['tier']:<8} {m['balance']:>6} points  {m['name']}"
              for m in server.members),
            "\nThe API by hand (the kiosk's token and a store manager's):",
            f'  export KIOSK="{self.core.client.token}" MANAGER="{server.manager_token()}"',
            f'  curl -s -H "Authorization: Bearer $KIOSK" {server.url}/v1/catalog',
            f"  API reference: {server.url}/docs and docs/api/openapi.json",
        ]  # fmt: skip
        return "\n".join(lines)


def key_help(pin: str) -> str:
    return "  ".join(f"{k} {v.format(pin=pin)}" for k, v in KEYS.items())


# ---- the window and its simulator keys (the strip: kiosk/screens/sim_strip.py) -----------------

PANEL_PX = 64  # the key help strip above the kiosk's 800x480


class KeyPanel:
    """The demo's simulator: ``KEYS`` on the keyboard and a help strip above the kiosk."""

    def __init__(self, rig: DemoRig, app) -> None:
        self.rig, self.app = rig, app
        self.pin = rig.server.staff_badge()[1]
        self.help = key_help(self.pin)
        self.last = "ready"
        self.set_text: Callable[[str], None] | None = None  # the strip, once installed

    def install(self) -> None:
        from kiosk.screens.sim_strip import install_strip

        self.set_text = install_strip(self.app, PANEL_PX, self.on_char, self.tick, 0.5)
        print(f"Simulator keys: {self.help}", flush=True)
        self.tick()

    def tick(self) -> None:
        rig = self.rig
        rig.check_jam()
        status = (f"network {'up' if rig.server.relay.up else 'CUT'} | paper "
                  f"{'in' if rig.paper_loaded else 'OUT'} | cover "
                  f"{'OPEN' if rig.cover_open else 'shut'} | last: {self.last}")  # fmt: skip
        if self.set_text is not None:
            self.set_text(f"{self.help}\n{status}")

    def on_char(self, ch: str) -> bool:
        """A typed character (upper case): True if it is a simulator key."""
        action = self.action(ch)
        if action is None:
            return False
        try:
            self.last = f"{ch}: {action()}"
        except Exception as exc:  # a simulator slip must not close the demo
            log.exception("simulator key %s failed", ch)
            self.last = f"{ch} failed: {exc}"
        print(self.last, flush=True)
        self.tick()
        return True

    def action(self, ch: str) -> Callable[[], str] | None:
        rig, server = self.rig, self.rig.server
        if ch in "12345":
            member = f"M000{ch}"
            return lambda: _did(rig.present(server.member_code(member)), f"{member}'s code shown")
        return {
            "S": lambda: _did(rig.present(server.staff_badge()[0]), f"staff badge, PIN {self.pin}"),
            "T": lambda: _did(rig.present(server.technician_code()), "technician code shown"),
            "C": lambda: f"closed doors: {rig.close_doors() or 'none were open'}",
            "J": lambda: _did(rig.arm_jam(), f"door {JAM_DOOR} jams at its next pulse"),
            "P": lambda: _did(rig.set_paper(not rig.paper_loaded),
                              "paper in" if rig.paper_loaded else "paper out"),
            "M": self.toggle_cover,
            "N": lambda: "network up" if server.relay.toggle() else "network cut",
            "Y": lambda: "paid" if server.pay(self._pay_url()) else "no payment is waiting",
        }.get(ch)  # fmt: skip

    def _pay_url(self) -> str | None:
        progress = self.app.session.state.progress
        return progress.pay_url if progress is not None else None

    def toggle_cover(self) -> str:
        """Cover open: the kiosk checks its devices and goes out of service, as it would (at
        once: the maintenance monitor would notice within its period anyway)."""
        rig = self.rig
        rig.set_cover(not rig.cover_open)
        self.app.ui.maintenance.check_now()
        return "printer cover open" if rig.cover_open else "printer cover shut"


def _did(_done: object, message: str) -> str:
    return message


def run_window(rig: DemoRig) -> None:
    """The kiosk in a window, with the simulator keys, until the window closes."""
    from kiosk.app import KioskApp, post
    from kiosk.wiring import build_ui

    app = KioskApp(build_ui(rig.core, post=post))
    panel = KeyPanel(rig, app)
    app.bind(on_start=lambda *_: panel.install())
    app.run()


def _kivy_quiet(record: logging.LogRecord) -> bool:
    """Kivy's start-up INFO lines, and its CRITICAL when xclip/xsel are missing (always so
    offscreen), say nothing about the kiosk; its warnings and errors do."""
    return record.levelno >= logging.WARNING and not str(record.msg).startswith("Cutbuffer:")


def _prepare_env(headless: bool, folder: Path) -> None:
    """Before the first Kivy or escpos import."""
    # Kivy's default log mode lowers the root logger to NOTSET: every DEBUG line on stderr
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    logging.getLogger("kivy").addFilter(_kivy_quiet)
    if headless:  # the tour renders offscreen even on a desktop
        os.environ["SDL_VIDEODRIVER"] = "offscreen"
    # python-escpos parses its printer database at each start and leaves a temp folder
    # behind, unless told where to keep the parsed copy (see bench/ui_bench.py); one per
    # demo folder: a shared one could be read half-written by a second demo starting
    cache = folder / "escpos-cache"
    cache.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", str(cache))


def _rig(folder: Path, port: int, timing: RigTiming) -> DemoRig:
    try:
        return DemoRig(folder, port, timing)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise KioskError(f"port {port} on 127.0.0.1 is taken: stop what uses it or pass "
                         "--port 0 (any free port)") from None  # fmt: skip


def run_demo(state_dir: Path | None, port: int | None = None, tour_dir: Path | None = None) -> int:
    """``kiosk demo``: the window with simulator keys, or the tour (``tour_dir``, or no display)."""
    headless = tour_dir is not None or not os.environ.get("DISPLAY")
    folder = state_dir or Path(tempfile.mkdtemp(prefix="kiosk-demo-"))
    _prepare_env(headless, folder)
    if not headless:
        rig = _rig(folder, DEFAULT_PORT if port is None else port, RigTiming())
        try:
            print(rig.banner(), flush=True)
            run_window(rig)
        except KeyboardInterrupt:
            pass
        finally:
            rig.stop()
        return 0
    throwaway = state_dir is None and tour_dir is not None
    if tour_dir is None:
        tour_dir = folder / "tour"
        print(f"No display: running the screenshot tour into {tour_dir}", flush=True)
    rig = _rig(folder, 0 if port is None else port, TOUR_TIMING)
    try:
        from kiosk.demo.tour import run_tour

        return run_tour(rig, tour_dir)
    finally:
        rig.stop()
        if throwaway:  # the store and journal of a tour written elsewhere
            shutil.rmtree(folder, ignore_errors=True)
