"""The far side of the demo's network: the reference store server with demo data on loopback
(``DemoServer``: it also mints what phones and badges show, and pays as a phone would), and the
TCP relay (``TcpRelay``) the demo puts between it and the kiosk to cut the network for real.

The kiosk's ``server.url`` points at the relay; the relay forwards each connection to the
store server. ``cut()`` closes the listening socket and every forwarded connection, so the
kiosk's next call gets "connection refused" and a pooled keep-alive connection breaks, as when
the shop's uplink drops; ``restore()`` listens on the same port again. The store server keeps
running meanwhile (the demo still pays payments and mints codes on it, as the member's phone
and the store's back office would).

Chosen over stopping and restarting the server thread: uvicorn's graceful shutdown takes up to
seconds, a restart rebinds a port another process may have taken, and the demo's own access
to the store (codes, payments) would go down with it.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from pathlib import Path

log = logging.getLogger(__name__)

_CHUNK = 65536


class TcpRelay:
    """Forward ``127.0.0.1:port`` to ``upstream`` until ``cut()``; ``restore()`` reopens it."""

    def __init__(self, upstream: tuple[str, int], host: str = "127.0.0.1", port: int = 0) -> None:
        self.upstream = upstream
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._pairs: set[socket.socket] = set()
        self._up = False
        self.connections = 0  # forwarded so far (tests and the demo's status line)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def up(self) -> bool:
        return self._up

    # ---- life ------------------------------------------------------------------------------
    def start(self) -> TcpRelay:
        """Listen (port 0 picks a free port, kept across cut/restore)."""
        with self._lock:
            if self._up:
                return self
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(64)
            self.port = sock.getsockname()[1]
            self._listener, self._up = sock, True
        threading.Thread(
            target=self._accept, args=(sock,), name="demo-relay-accept", daemon=True
        ).start()
        log.info("relay %s -> %s:%d", self.url, *self.upstream)
        return self

    def cut(self) -> None:
        """The network goes down: refuse new connections and break the open ones."""
        self.stop()
        log.warning("relay %s: network cut", self.url)

    def stop(self) -> None:
        """Close everything (as ``cut``, without the warning); ``start()`` listens again."""
        with self._lock:
            listener, self._listener, self._up = self._listener, None, False
            pairs, self._pairs = self._pairs, set()
        for sock in ([listener] if listener else []) + list(pairs):
            _close(sock)

    def restore(self) -> None:
        """The network is back, on the same port."""
        self.start()
        log.warning("relay %s: network restored", self.url)

    def toggle(self) -> bool:
        """Cut if up, restore if down; returns whether it is up now."""
        if self._up:
            self.cut()
        else:
            self.restore()
        return self._up

    # ---- forwarding ------------------------------------------------------------------------
    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # cut() closed the listener
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError as exc:
                log.warning("relay: upstream %s:%d unreachable: %s", *self.upstream, exc)
                _close(client)
                continue
            server.settimeout(None)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if listener is not self._listener:  # cut while connecting
                    _close(client)
                    _close(server)
                    return
                self._pairs.update((client, server))
                self.connections += 1
            for src, dst in ((client, server), (server, client)):
                threading.Thread(
                    target=self._pump, args=(src, dst), name="demo-relay-pump", daemon=True
                ).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(_CHUNK):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            # one side ended: end both, so the other pump returns too
            with self._lock:
                self._pairs.discard(src)
                self._pairs.discard(dst)
            _close(src)
            _close(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already disconnected
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class DemoServer:
    """The store server with demo data on ``127.0.0.1:port``, run in this process through the
    store server's public facade (``storeserver.embedded``: the demo uses no other module of
    it), and the relay the kiosk reaches it through (``relay.url``)."""

    def __init__(self, folder: Path, kiosk_id: str, port: int = 0) -> None:
        from storeserver.embedded import EmbeddedStoreServer

        self.kiosk_id = kiosk_id
        # the demo pays as a phone would: simulated payments, which anyone could mark paid
        self.store_server = server = EmbeddedStoreServer(folder, [kiosk_id], port)
        self.members, self.url = server.members, server.url
        try:
            self.relay = TcpRelay(("127.0.0.1", server.port)).start()
        except BaseException:
            server.stop()
            raise

    def enrollment_code(self) -> str:
        """A one-time code for the demo kiosk's id (a replacement once it is enrolled)."""
        return self.store_server.enrollment_code(self.kiosk_id)

    def manager_token(self) -> str:
        """A token of the demo store's manager account (made on first use, valid a day)."""
        return self.store_server.manager_token()

    def member_code(self, member_id: str) -> str:
        """A fresh code as the member's app shows it (valid about a minute)."""
        return self.store_server.member_code(member_id)

    def staff_badge(self) -> tuple[str, str]:
        """The first demo staff member's badge code and PIN."""
        return self.store_server.staff_badge()

    def technician_code(self) -> str:
        """A fresh technician code for the demo kiosk, issued (and recorded) by the server as
        ``storeserver technician-code --kiosk ID`` does; the kiosk takes each one once."""
        return self.store_server.technician_code(self.kiosk_id)

    def pay(self, pay_url: str | None) -> bool:
        """The member's phone pays the payment behind ``pay_url`` (False: none given)."""
        if not pay_url:
            return False
        self.store_server.pay(pay_url.rsplit("/", 1)[-1])
        return True

    def payments_expiring_after(self, seconds: int):
        """A context: payments started in it expire after ``seconds`` (the store server's
        expiry, not the kiosk's own timeout)."""
        return self.store_server.payments_expiring_after(seconds)

    def stop(self) -> None:
        self.relay.stop()
        self.store_server.stop()
