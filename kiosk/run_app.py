"""``kiosk run``: the kiosk itself, as systemd starts it (systemd/kiosk.service).

Order matters: logging first (journald, transaction ids), then the config (a bad one exits
78, EX_CONFIG, which the unit does not restart: restarting cannot fix it), the core with
crash recovery before any member is served, and last the UI, whose main loop sends
READY=1 on its first frames and WATCHDOG=1 after (a frozen UI is restarted by systemd).
"""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path

from .config import load_config
from .errors import ConfigError, KioskError
from .logctx import configure_logging
from .sdnotify import WatchdogPinger

log = logging.getLogger(__name__)

EX_CONFIG = 78  # sysexits.h: the unit's RestartPreventExitStatus


def run_kiosk(
    config_path: Path, *, level: str = "INFO", pinger: WatchdogPinger | None = None
) -> int:
    configure_logging(level)
    pinger = pinger or WatchdogPinger()
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        log.critical("cannot start: %s", exc)
        pinger.status(f"configuration error: {exc}")
        return EX_CONFIG
    pinger.status("starting: crash recovery and first sync")

    from drivers.camera import make_scanner  # the composition root may import drivers

    from .core import build_core
    from .services.diagnostics import install_error_buffer

    install_error_buffer()  # the technician screen's "recent errors"
    scanner = make_scanner(cfg.scanner)
    core = build_core(cfg, scanner=scanner)
    try:
        core.start()
        if core.journal.safe_mode:
            pinger.status(f"SAFE MODE: {core.journal.safe_mode_reason}")
        from .app import KioskApp  # imports Kivy: only now, after the config is known good

        log.info("kiosk %s starting its UI", cfg.kiosk.id)
        app = KioskApp(core, on_frame=pinger.ping)
        stop_on_sigterm(app)
        app.run()
        log.info("kiosk %s stopped", cfg.kiosk.id)
        return 0
    finally:
        pinger.stopping()
        core.stop()


def stop_on_sigterm(app) -> None:
    """``systemctl stop``: leave the main loop at the next frame, so the core stops cleanly
    (sync worker, relays off, printer closed) instead of dying mid-frame."""
    from kivy.clock import Clock

    def handler(signum: int, _frame) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        Clock.schedule_once(lambda _dt: app.stop(), 0)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


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
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO (default), WARNING")
    p.set_defaults(func=cmd_run)
