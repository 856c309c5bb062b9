"""systemd's notify protocol (sd_notify) without libsystemd: READY, WATCHDOG, STATUS, STOPPING.

kiosk.service is ``Type=notify`` with ``WatchdogSec=``: systemd waits for ``READY=1`` before it
calls the kiosk started, and restarts it when no ``WATCHDOG=1`` arrives within the timeout.
The pings come from the Kivy main loop (``KioskApp(on_frame=pinger.ping)``), never from a
thread of their own: a frozen UI must stop them, or systemd would keep a dead screen alive.

The protocol is one datagram of ``KEY=VALUE`` lines to the AF_UNIX socket named in
``$NOTIFY_SOCKET`` (a leading ``@`` is the abstract namespace). Without the variable (a
terminal, the tests, the demo) every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

Sender = Callable[[str], bool]


def _address(name: str) -> str:
    # "@name" is Linux's abstract namespace: the kernel wants a leading NUL instead.
    return "\0" + name[1:] if name.startswith("@") else name


def send(message: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``message`` (``KEY=VALUE`` lines) to ``$NOTIFY_SOCKET``; False if there is none.

    A send that fails is logged, not raised: the UI must not die because systemd went away
    (it would restart the kiosk anyway when the watchdog runs out).
    """
    name = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    if not name:
        return False
    if not name.startswith(("/", "@")):
        log.warning("NOTIFY_SOCKET=%r is neither a path nor @abstract: not notifying", name)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(_address(name))
            sock.sendall(message.encode("utf-8", "replace"))
    except OSError as exc:
        log.warning("sd_notify to %s failed (%s): systemd may restart the kiosk", name, exc)
        return False
    return True


def notify(
    *,
    ready: bool = False,
    watchdog: bool = False,
    status: str | None = None,
    stopping: bool = False,
    env: Mapping[str, str] | None = None,
) -> bool:
    """Tell systemd what the kiosk is doing; True if a datagram was sent."""
    lines = []
    if ready:
        lines.append("READY=1")
    if stopping:
        lines.append("STOPPING=1")
    if status is not None:
        # One line per field: a newline in the text would start a bogus field.
        lines.append("STATUS=" + " ".join(status.split()))
    if watchdog:
        lines.append("WATCHDOG=1")
    if not lines:
        return False
    return send("\n".join(lines) + "\n", env)


def watchdog_interval_s(
    env: Mapping[str, str] | None = None, pid: int | None = None
) -> float | None:
    """Seconds between pings (half of ``$WATCHDOG_USEC``, as sd_watchdog_enabled advises),
    or None when systemd expects none from this process."""
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    owner = env.get("WATCHDOG_PID", "")
    # WATCHDOG_PID names the process the watchdog is for; a child that inherited the
    # environment must not ping on its parent's behalf.
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    return usec / 2_000_000


class WatchdogPinger:
    """Call ``ping()`` from the UI main loop (every frame or every second is fine).

    The first ping sends ``READY=1``: the UI is up and drawing. Later pings send
    ``WATCHDOG=1`` at most once per interval (half of ``WatchdogSec``), so calling it often
    costs nothing. When the main loop blocks, ``ping()`` is not called and systemd restarts
    the kiosk after ``WatchdogSec``.
    """

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sender: Sender | None = None,
        pid: int | None = None,
    ) -> None:
        self._env = dict(os.environ if env is None else env)
        self.enabled = bool(self._env.get("NOTIFY_SOCKET"))
        self.interval_s = watchdog_interval_s(self._env, pid) if self.enabled else None
        self._clock = clock
        self._send: Sender = sender or (lambda message: send(message, self._env))
        self._ready = False
        self._last: float | None = None
        self.pings = 0  # WATCHDOG=1 datagrams sent, for the diagnostics screen and tests

    @property
    def ready_sent(self) -> bool:
        return self._ready

    def ping(self) -> None:
        """READY=1 the first time, then WATCHDOG=1 whenever an interval has passed."""
        if not self.enabled:
            return
        now = self._clock()
        if not self._ready:
            self._ready = self._send("READY=1\nSTATUS=serving members\n")
            if self._ready:
                log.info("told systemd the kiosk is ready (watchdog every %s s)", self.interval_s)
                self._last = now
            return
        if self.interval_s is None:
            return
        if self._last is not None and now - self._last < self.interval_s:
            return
        if self._send("WATCHDOG=1\n"):
            self._last = now
            self.pings += 1

    def status(self, text: str) -> None:
        """Show ``text`` in ``systemctl status kiosk`` (start-up phases, safe mode ...)."""
        if self.enabled:
            notify(status=text, env=self._env)

    def stopping(self) -> None:
        """Tell systemd a clean stop is under way (so a slow stop is not a watchdog kill)."""
        if self.enabled:
            notify(stopping=True, status="stopping", env=self._env)
