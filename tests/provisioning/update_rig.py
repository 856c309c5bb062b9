"""What the update tests share: real release artifacts (two good versions and a broken one,
built by provisioning.release from copies of this tree), and a kiosk folder (--root) with a
release installed and current, the unit installed from that release, a simulator config
enrolled with the reference store server, and the kiosk running offscreen under the process
service manager (provisioning/service.py), READY=1 seen.

Installs are the cost (a ~400 MB venv from pip's cache, about 35 s here): tests share them
through module fixtures.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kiosk.config import load_config
from kiosk.demo.rig import KIOSK_ID, TOUR_TIMING, kiosk_toml
from kiosk.sync.client import StoreServerClient
from provisioning.release import build_release, install_release, release_dir, switch_current
from provisioning.service import UNIT_PATH, ProcessService
from provisioning.target import Target

REPO = Path(__file__).parents[2]
GOOD_1, GOOD_2, BAD = "0.1.0+upd.good1", "0.1.0+upd.good2", "0.1.0+upd.bad"
READY_TIMEOUT_S = 120
# the kiosk offscreen: no KMS display here
SERVICE_ENV = {"SDL_VIDEODRIVER": "offscreen"}


@dataclass(frozen=True)
class Releases:
    good_1: Path
    good_2: Path
    bad: Path


def _copy_tree(dest: Path) -> Path:
    ignore = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", ".*_cache")
    shutil.copytree(REPO, dest, ignore=ignore)
    return dest


def build_releases(folder: Path) -> Releases:
    """Two good releases of this tree, and one whose ``kiosk run`` dies before READY=1 (its
    source patched: the app's class is imported under a name that does not exist)."""
    out = folder / "artifacts"
    good_1 = build_release(REPO, out, GOOD_1)
    good_2 = build_release(REPO, out, GOOD_2)
    broken = _copy_tree(folder / "broken-tree")
    run_py = broken / "kiosk/commands/run.py"
    text = run_py.read_text()
    old = "from kiosk.app import KioskApp"
    assert text.count(old) == 1, "kiosk run no longer imports the app this way: fix the rig"
    run_py.write_text(text.replace(old, "from kiosk.app import KioskAppBroken as KioskApp"))
    return Releases(good_1, good_2, build_release(broken, out, BAD))


@contextmanager
def store_server(folder: Path) -> Iterator[object]:
    """The reference store server on loopback, its manual clock kept at the real time (the
    kiosk's doctor fails a clock 30 s off, and the tests run for minutes)."""
    from tests.kiosk.services.rig import ServerSide

    server = ServerSide(folder)
    stop = threading.Event()

    def keep_time() -> None:
        while not stop.wait(0.5):
            behind = dt.datetime.now(dt.UTC) - server.clock.now()
            server.clock.advance(seconds=int(behind.total_seconds()))

    ticker = threading.Thread(target=keep_time, name="store-clock", daemon=True)
    ticker.start()
    try:
        yield server
    finally:
        stop.set()
        ticker.join()
        server.stop()


def service_args() -> list[str]:
    return [f"--service-env={k}={v}" for k, v in SERVICE_ENV.items()]


def make_kiosk(root: Path, artifact: Path, version: str, store, kiosk_id: str = KIOSK_ID) -> Target:
    """A kiosk folder running ``artifact``: installed, current, unit, config, enrolled with
    ``store`` (a ServerSide) as ``kiosk_id``."""
    target = Target(root)
    install_release(target, artifact)
    switch_current(target, version)
    unit = target.path(UNIT_PATH)
    unit.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(release_dir(target, version) / "share/kiosk/systemd/kiosk.service", unit)
    config = target.path("/etc/kiosk/kiosk.toml")
    config.parent.mkdir(parents=True, exist_ok=True)
    text = kiosk_toml(target.path("/var/lib/kiosk"), store.url, TOUR_TIMING)
    config.write_text(text.replace(f'id = "{KIOSK_ID}"', f'id = "{kiosk_id}"', 1))
    cfg = load_config(config)
    assert cfg.kiosk.id == kiosk_id
    with StoreServerClient.from_config(cfg.server) as client:
        client.enroll(store.enrollment_code(kiosk_id), kiosk_id)
    service = ProcessService(target, SERVICE_ENV)
    service.restart()
    ready = service.wait_ready(READY_TIMEOUT_S)
    assert ready.ready, f"{ready.detail}\n{service.last_log(40)}"
    return target


def stop_kiosk(target: Target) -> None:
    ProcessService(target).stop()


def update(root: Path, artifact: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``kiosk-provision update`` of this tree, as a technician runs it."""
    argv = [sys.executable, "-m", "provisioning.cli", "update", str(artifact), "--root", str(root)]
    argv += [*service_args(), "--health-timeout", str(READY_TIMEOUT_S), *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)


def running_pid(target: Target) -> int | None:
    return ProcessService(target).pid()
