"""The demo rig: the demo store server behind a relay that can cut the network for real
(``kiosk.demo.network.DemoServer``), a kiosk config with the simulated scanner, printer and
locker, enrolled, its core built and started (kiosk/wiring.py, as ``kiosk run`` does), and the
simulator controls the keys (``kiosk.demo.keys``) and the tour (``kiosk.demo.tour``) use.
``kiosk.demo.main`` puts them together.
"""

from __future__ import annotations

import logging
import math
import textwrap
from dataclasses import dataclass, replace
from pathlib import Path

log = logging.getLogger(__name__)

KIOSK_ID = "kiosk-01"
DEFAULT_PORT = 8080
# kiosk.config's upper bound for ui.idle_logout_s: a longer one would be refused (from a factor
# of 2.5 on, the tour's 120 s); 5 minutes without a touch is long enough on any machine
IDLE_LOGOUT_MAX_S = 300
COMPARTMENTS = range(1, 7)  # as storeserver.demo.COMPARTMENTS
JAM_DOOR = 1


@dataclass(frozen=True)
class RigTiming:
    """How fast the rig's kiosk notices things: the tour wants seconds, not minutes."""

    heartbeat_s: float = 2.0
    refresh_s: float = 10.0
    backoff_cap_s: float = 4.0
    door_open_timeout_s: int = 3
    idle_logout_s: int = 60
    scanner_fps: int = 5

    def scaled(self, factor: float) -> RigTiming:
        """On a machine ``factor`` times slower (``kiosk.demo.slowness``): every interval and
        timeout of the demo kiosk stretched alike, so it does as much per second of its work as
        on a normal machine, and a slow door sensor is not a jam; the frame rate stays."""
        return replace(
            self,
            heartbeat_s=self.heartbeat_s * factor,
            refresh_s=self.refresh_s * factor,
            backoff_cap_s=self.backoff_cap_s * factor,
            door_open_timeout_s=math.ceil(self.door_open_timeout_s * factor),
            idle_logout_s=min(math.ceil(self.idle_logout_s * factor), IDLE_LOGOUT_MAX_S),
        )


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
        camera_preview = true  # the simulated camera sees no shoppers: show it, and its notice
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
        from kiosk.sync.records import SyncSettings
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
