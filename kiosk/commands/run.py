"""``kiosk run``: the kiosk itself, as systemd starts it (systemd/kiosk.service).

Order matters: logging first (journald, transaction ids), then the config (a bad one exits
78, EX_CONFIG, which the unit does not restart: restarting cannot fix it), then the window
with a "starting" screen while the core (devices, journal, crash recovery, first sync)
starts on a worker; no member is served before recovery is done. Then the UI's main loop
sends READY=1 and WATCHDOG=1 every half WatchdogSec (a frozen UI is restarted by systemd).
A start that fails is shown for a while, then the process exits 2 and systemd retries.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from kiosk.config import KioskConfig, load_config
from kiosk.errors import ConfigError, KioskError
from kiosk.platform.logctx import configure_logging
from kiosk.platform.sdnotify import WatchdogPinger

log = logging.getLogger(__name__)

EX_CONFIG = 78  # sysexits.h: the unit's RestartPreventExitStatus


def run_kiosk(
    config_path: Path, *, level: str | None = None, pinger: WatchdogPinger | None = None
) -> int:
    configure_logging(level or "INFO")
    pinger = pinger or WatchdogPinger()
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        log.critical("cannot start: %s", exc)
        pinger.status(f"configuration error: {exc}")
        return EX_CONFIG
    logging.getLogger().setLevel(level or cfg.log.level)  # [log] level unless --log-level
    pinger.status("starting: crash recovery and first sync")
    use_escpos_cache(cfg)
    from kiosk.app import KioskApp  # imports Kivy: only now, after the config is known good

    starter = CoreStarter(cfg, pinger)
    app = KioskApp.booting(cfg, starter, on_frame=pinger.ping)
    app.stop_on_signals()
    try:
        app.run()
    finally:
        pinger.stopping()
        starter.stop()
    if app.start_error is not None:
        raise app.start_error  # logged already; exit status 2 and systemd starts it again
    log.info("kiosk %s stopped", cfg.kiosk.id)
    return 0


def use_escpos_cache(cfg: KioskConfig) -> None:
    """python-escpos parses its printer database at import (about 0.2 s) into a new temp
    folder each time, unless told where to keep the parsed copy: the state folder."""
    cache = cfg.kiosk.state_dir / "cache"
    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", str(cache))


class CoreStarter:
    """``start_ui`` for ``KioskApp.booting``: runs behind the starting screen (a worker):
    devices, journal, crash recovery, first sync, then the flows the screens render (all
    built by the composition root, kiosk/wiring.py). ``stop()`` stops what it built."""

    def __init__(self, cfg: KioskConfig, pinger: WatchdogPinger | None = None) -> None:
        self.cfg, self.pinger = cfg, pinger
        self.core = None

    def __call__(self):
        from drivers.camera import make_scanner  # the composition root may import drivers
        from kiosk.app import post
        from kiosk.services.diagnostics import install_error_buffer
        from kiosk.wiring import build_core, build_ui

        install_error_buffer()  # the technician screen's "recent errors"
        self.core = core = build_core(self.cfg, scanner=make_scanner(self.cfg.scanner))
        core.start()
        if core.journal.safe_mode and self.pinger is not None:
            self.pinger.status(f"SAFE MODE: {core.journal.safe_mode_reason}")
        log.info("kiosk %s serving", self.cfg.kiosk.id)
        return build_ui(core, post=post)

    def stop(self) -> None:
        if self.core is not None:
            self.core.stop()


def cmd_run(args: argparse.Namespace) -> int:
    try:
        return run_kiosk(args.config, level=args.log_level)
    except KioskError as exc:  # a device that cannot be opened at start-up, say
        log.critical("kiosk stopped: %s", exc)
        raise


def add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run the kiosk (touch UI, transactions, sync) as systemd does; "
        "exit 78 on a bad config",
    )
    p.add_argument(
        "--log-level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="overrides [log] level of the config for this run",
    )
    p.set_defaults(func=cmd_run)
