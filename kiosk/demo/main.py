"""``kiosk demo``: the whole kiosk on one machine, with the store server and simulated devices.

The rig (``kiosk.demo.rig.DemoRig``) starts the store server, the relay and the kiosk's core.
Then either the touch app opens in a window with simulator keys (``kiosk.demo.keys``), or,
with ``--tour DIR`` or without a display, the scripted tour (``kiosk.demo.tour``) runs
offscreen through every screen and writes a screenshot per step and the printed receipts to DIR.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
from pathlib import Path

from kiosk.demo.keys import run_window
from kiosk.demo.rig import DEFAULT_PORT, TOUR_TIMING, DemoRig, RigTiming
from kiosk.demo.slowness import slow_factor
from kiosk.errors import KioskError


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


SERVER_EXTRA = {"fastapi", "uvicorn", "starlette"}  # setup.cfg's [server] extra, as imported


def _rig(folder: Path, port: int, timing: RigTiming) -> DemoRig:
    try:
        return DemoRig(folder, port, timing)
    except ImportError as exc:  # the store server starts serving only here
        if (exc.name or "").partition(".")[0] not in SERVER_EXTRA:
            raise
        raise KioskError(f"kiosk demo needs the store server ({exc.name} missing): "
                         "pip install -e '.[server]'") from None  # fmt: skip
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise KioskError(f"port {port} on 127.0.0.1 is taken: stop what uses it or pass "
                         "--port 0 (any free port)") from None  # fmt: skip


def run_demo(
    state_dir: Path | None,
    port: int | None = None,
    tour_dir: Path | None = None,
    slow: str | float | None = None,
) -> int:
    """``kiosk demo``: the window with simulator keys, or the tour (``tour_dir``, or no display).
    ``slow``: ``--slow-factor``, else ``KIOSK_SLOW_FACTOR`` (``kiosk.demo.slowness``)."""
    factor = slow_factor(slow)  # a bad value stops here, before anything starts
    headless = tour_dir is not None or not os.environ.get("DISPLAY")
    folder = state_dir or Path(tempfile.mkdtemp(prefix="kiosk-demo-"))
    _prepare_env(headless, folder)
    if not headless:
        rig = _rig(folder, DEFAULT_PORT if port is None else port, RigTiming().scaled(factor))
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
    rig = _rig(folder, 0 if port is None else port, TOUR_TIMING.scaled(factor))
    try:
        from kiosk.demo.tour import run_tour

        return run_tour(rig, tour_dir, factor)
    finally:
        rig.stop()
        if throwaway:  # the store and journal of a tour written elsewhere
            shutil.rmtree(folder, ignore_errors=True)
