"""Run the API with uvicorn, either in the foreground or on a thread (tests, the kiosk demo)."""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn

from .api import create_app
from .store import Store

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only when it does, and
    # without it every keep-alive response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


class ServerThread:
    """The store server on a background thread; port 0 picks a free port (see ``url``)."""

    def __init__(self, store: Store, host: str = "127.0.0.1", port: int = 0) -> None:
        self.store = store
        self._sock = bind(host, port)
        self.host, self.port = self._sock.getsockname()[:2]
        store.listening_url = self.url
        config = uvicorn.Config(
            create_app(store), log_level="warning", access_log=False, timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name="storeserver",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("store server did not start")
            time.sleep(0.01)
        return self

    def serve_forever(self) -> None:
        """Serve on the calling (main) thread until SIGINT or SIGTERM, then shut down gracefully."""
        try:
            self._server.run(sockets=[self._sock])
        finally:
            self._sock.close()

    def wait(self) -> None:
        """Block until the background server stops."""
        self._thread.join()

    def stop(self) -> None:
        """Stop serving and close the listening socket, so clients get 'connection refused'."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
