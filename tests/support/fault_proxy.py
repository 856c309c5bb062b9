"""A fault-injection HTTP/1.1 proxy on loopback, between the kiosk's client and the store server.

It forwards every request (method, target, headers including Authorization and Host, body) to
the upstream server over a fresh connection, and answers the client on the client's own
keep-alive connection, unless a rule says otherwise. A rule (:class:`Fault`) picks requests by
method, path and occurrence and then drops, delays or answers them with an error status or
garbage, either before the server saw the request or after it applied it. :meth:`partition`
refuses every connection (and cuts the open ones) until :meth:`heal`.

    with FaultProxy(server.host, server.port) as proxy:
        client = StoreServerClient(proxy.url, ...)
        proxy.add_rule(Fault(Action.DROP_AFTER, "POST", r"/v1/redemptions", nth=1))
        hold = client.create_redemption(...)  # the retry gets the first answer again
        assert [s.action for s in proxy.seen] == [Action.DROP_AFTER, None]

Plain HTTP only (the proxy does not speak TLS). ``partition`` keeps the port reserved on Linux
(the listening socket stops listening but stays bound), so ``heal`` comes back on the same URL.
Used by tests and, with ``PYTHONPATH=.``, by bench campaigns.
"""

from __future__ import annotations

import contextlib
import enum
import http
import http.client
import logging
import random
import re
import socket
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

__all__ = ["Action", "Fault", "FaultProxy", "Garbage", "Seen"]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
_BACKLOG = 64
_MAX_LINE = 65536
# Headers that describe one hop, not the message (RFC 9110 7.6.1): never forwarded as they are.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",  # recomputed from the body actually sent
    }
)

_GATEWAY_PAGE = (
    "<html><head><title>{status} {reason}</title></head>"
    "<body><h1>{status} {reason}</h1><hr>fault-proxy</body></html>"
)
_NOT_JSON = b"<html><body>Store Wi-Fi: please accept the terms to continue</body></html>"
_WRONG_SHAPE = b'{"ok": true, "data": null}'
_TRUNCATED = (
    b'{"status": "ok", "server_time": "2026-01-01T00:00:00+00:00", "padding": "' + b"x" * 64 + b'"}'
)


class Action(enum.Enum):
    """What a rule does to a request it picked."""

    DROP_BEFORE = "drop_before"  # close the client connection unanswered; the server never saw it
    DROP_AFTER = "drop_after"  # forward (the server applies it), then close without answering
    DELAY = "delay"  # sleep delay_s, before forwarding or (after_server) before answering
    STATUS = "status"  # answer ``status`` (default 503) with a gateway page
    GARBAGE = "garbage"  # answer ``status`` (default 200) with a :class:`Garbage` body


class Garbage(enum.Enum):
    """The kind of garbage a GARBAGE rule answers."""

    NOT_JSON = "not_json"  # an HTML page (a captive portal), Content-Type text/html
    WRONG_SHAPE = "wrong_shape"  # valid JSON, Content-Type application/json, not the API's shape
    TRUNCATED = "truncated"  # half the body under a Content-Length of the whole, then close


@dataclass(frozen=True)
class Fault:
    """One rule: which requests it picks, and what it does to them.

    A request is *matching* when its method equals ``method`` (any if None, case-insensitive)
    and its path (without the query) matches the regular expression ``path`` in full. Among
    matching requests the rule fires on the ``nth`` (1-based; every one if None), at most
    ``times`` times (no limit if None), and then with ``probability`` drawn from
    ``random.Random(seed)`` (one draw per candidate, so a seed gives one sequence).

    ``after_server``: STATUS, GARBAGE and DELAY act after the server handled the request (it
    saw it and acted on it) instead of before forwarding it. DROP_AFTER always forwards
    first, DROP_BEFORE never. ``body`` replaces the default page or garbage; for TRUNCATED
    after the server, the server's own answer is cut unless ``body`` is given.
    """

    action: Action
    method: str | None = None
    path: str = ".*"
    nth: int | None = None
    times: int | None = None
    probability: float = 1.0
    seed: int = 0
    after_server: bool = False
    delay_s: float = 0.0
    status: int | None = None
    garbage: Garbage = Garbage.NOT_JSON
    body: bytes | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.action, Action):
            raise ValueError(f"action must be an Action, got {self.action!r}")
        try:
            re.compile(self.path)
        except re.error as exc:
            raise ValueError(f"path {self.path!r} is not a regular expression: {exc}") from None
        if self.nth is not None and self.nth < 1:
            raise ValueError(f"nth counts from 1, got {self.nth}")
        if self.times is not None and self.times < 0:
            raise ValueError(f"times must be >= 0, got {self.times}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be within [0, 1], got {self.probability}")
        if self.delay_s < 0:
            raise ValueError(f"delay_s must be >= 0, got {self.delay_s}")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status, got {self.status}")
        if self.after_server and self.action is Action.DROP_BEFORE:
            raise ValueError("DROP_BEFORE never reaches the server: use DROP_AFTER")

    @property
    def forwards(self) -> bool:
        """Whether the server gets the request (before the fault acts, or, for DELAY, after)."""
        if self.action is Action.DROP_BEFORE:
            return False
        return self.action in (Action.DROP_AFTER, Action.DELAY) or self.after_server


@dataclass(frozen=True)
class Seen:
    """One request the proxy read, and what it did with it so far (``proxy.seen``)."""

    method: str
    path: str  # without the query
    query: str
    action: Action | None  # None: passed through untouched
    fault: Fault | None  # the rule that fired
    forwarded: bool  # sent to the server (see upstream_status for whether it answered)
    upstream_status: int | None  # the server's status; None if not (yet) forwarded or it failed
    status: int | None  # the status line the client got; None if closed without an answer
    done: bool  # False while the proxy still works on it (e.g. sleeping in a DELAY)


@dataclass
class _Entry:
    """The mutable record behind a :class:`Seen` (changed under the proxy's lock)."""

    method: str
    path: str
    query: str
    action: Action | None = None
    fault: Fault | None = None
    forwarded: bool = False
    upstream_status: int | None = None
    status: int | None = None
    done: bool = False

    def freeze(self) -> Seen:
        return Seen(
            self.method,
            self.path,
            self.query,
            self.action,
            self.fault,
            self.forwarded,
            self.upstream_status,
            self.status,
            self.done,
        )


@dataclass
class _Rule:
    fault: Fault
    regex: re.Pattern[str] = field(init=False)
    rng: random.Random = field(init=False)
    matched: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        self.regex = re.compile(self.fault.path)
        self.rng = random.Random(self.fault.seed)

    def matches(self, method: str, path: str) -> bool:
        want = self.fault.method
        return (want is None or want.upper() == method.upper()) and bool(self.regex.fullmatch(path))

    def fires(self) -> bool:
        f = self.fault
        if f.nth is not None and self.matched != f.nth:
            return False
        if f.times is not None and self.fired >= f.times:
            return False
        return f.probability >= 1.0 or self.rng.random() < f.probability


@dataclass(frozen=True)
class _Upstream:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


class _BadRequest(Exception):
    """The client sent a request the proxy cannot read (answered 400, connection closed)."""


class _Handler(BaseHTTPRequestHandler):
    """One client connection: reads requests one after another (keep-alive) for the proxy."""

    protocol_version = "HTTP/1.1"
    server: FaultProxy  # type: ignore[assignment]  # our own accept loop passes the proxy

    def handle_one_request(self) -> None:
        self.raw_requestline = self.rfile.readline(_MAX_LINE + 1)
        if not self.raw_requestline or len(self.raw_requestline) > _MAX_LINE:
            self.close_connection = True
            return
        if not self.parse_request():  # it answered 400/505 and asked to close
            return
        self.server._proxy(self)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s: " + format, self.address_string(), *args)


def _read_body(h: _Handler) -> bytes:
    if "chunked" in h.headers.get("Transfer-Encoding", "").lower():
        out = bytearray()
        while True:
            line = h.rfile.readline(_MAX_LINE + 1)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest(f"bad chunk size line {line[:40]!r}") from None
            if size == 0:
                while h.rfile.readline(_MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
                    pass  # trailers: dropped
                return bytes(out)
            chunk = h.rfile.read(size)
            if len(chunk) != size:
                raise _BadRequest("the request body ended inside a chunk")
            out += chunk
            h.rfile.readline(_MAX_LINE + 1)
    length = h.headers.get("Content-Length")
    if length is None:
        return b""
    try:
        n = int(length)
    except ValueError:
        raise _BadRequest(f"bad Content-Length {length!r}") from None
    body = h.rfile.read(n) if n > 0 else b""
    if len(body) != max(n, 0):
        raise _BadRequest("the request body is shorter than its Content-Length")
    return body


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    return sock


def _bind_explicit_free_port() -> socket.socket:
    """A socket bound to a free loopback port *by number*.

    Linux releases a port that was picked with port 0 when its socket stops listening, but
    keeps one bound by number; so ``partition`` can stop listening without losing the port.
    Two sockets with SO_REUSEADDR may share a port while neither listens.
    """
    probe = _bind(0)
    try:
        return _bind(probe.getsockname()[1])
    finally:
        probe.close()


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the other side
        sock.shutdown(socket.SHUT_RDWR)


class FaultProxy:
    """A threaded HTTP/1.1 proxy on 127.0.0.1 (port picked at start) to one upstream server."""

    def __init__(
        self, upstream_host: str, upstream_port: int, *, upstream_timeout_s: float = 10.0
    ) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.upstream_timeout_s = upstream_timeout_s
        self.connections_accepted = 0  # client connections (keep-alive reuse keeps it low)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._rules: list[_Rule] = []
        self._seen: list[_Entry] = []
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self._port: int | None = None
        self._partitioned = False
        self._accept_thread: threading.Thread | None = None

    # ---- life -------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the fault proxy is not started")
        return self._port

    @property
    def host(self) -> str:
        return HOST

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> FaultProxy:
        if self._accept_thread is not None:
            raise RuntimeError("a fault proxy starts once")
        listener = _bind_explicit_free_port()
        listener.listen(_BACKLOG)
        self._listener = listener
        self._port = listener.getsockname()[1]
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name="fault-proxy-accept", daemon=True
        )
        self._accept_thread.start()
        log.debug("fault proxy %s -> %s:%s", self.url, self.upstream_host, self.upstream_port)
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop accepting, cut every connection, interrupt delays; waits up to ``timeout_s``."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
            listener, self._listener = self._listener, None
            conns = list(self._conns)
            threads = list(self._threads)
        if listener is not None:
            _cut(listener)  # wakes a thread blocked in accept() (Linux)
            listener.close()
        for conn in conns:
            _cut(conn)
        if self._accept_thread is not None:
            self._accept_thread.join(timeout_s)
        for t in threads:
            t.join(timeout_s)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- rules and log ----------------------------------------------------------------------
    def add_rule(self, fault: Fault) -> Fault:
        """Add a rule after the others; the first rule that fires on a request wins."""
        with self._lock:
            self._rules.append(_Rule(fault))
        return fault

    def clear(self) -> None:
        """Remove every rule (and their counts): requests pass through again."""
        with self._lock:
            self._rules.clear()

    def matched(self, fault: Fault) -> int:
        """How many requests matched this rule (added with ``add_rule``, not cleared)."""
        return self._rule(fault).matched

    def fired(self, fault: Fault) -> int:
        """How many times this rule acted. DELAY counts when the delay starts."""
        return self._rule(fault).fired

    def _rule(self, fault: Fault) -> _Rule:
        with self._lock:
            for rule in self._rules:
                if rule.fault is fault:
                    return rule
        raise KeyError(f"not a rule of this proxy (cleared?): {fault!r}")

    @property
    def seen(self) -> list[Seen]:
        """A snapshot of the log of requests read, in the order they arrived.

        An entry is logged as soon as its request is read, and is ``done`` before the client
        gets anything back (an answer or a closed connection): once a client call returns or
        raises, every request it made is in the log, done unless a DELAY still holds it (a
        delayed request may reach the server later, after the client gave up).
        """
        with self._lock:
            return [e.freeze() for e in self._seen]

    def clear_seen(self) -> None:
        with self._lock:
            self._seen.clear()

    # ---- partition --------------------------------------------------------------------------
    @property
    def partitioned(self) -> bool:
        return self._partitioned

    def partition(self) -> None:
        """Refuse new connections and cut the open ones (the cable is pulled) until ``heal``."""
        with self._cond:
            if self._partitioned or self._listener is None:
                return
            self._partitioned = True
            conns = list(self._conns)
            try:
                # Linux: the socket stops listening (connections are refused) but keeps its port.
                self._listener.shutdown(socket.SHUT_RD)
            except OSError:
                self._listener.close()  # elsewhere: give the port up, bind it again on heal
                self._listener = None
        for conn in conns:
            _cut(conn)
        log.info("fault proxy %s: partitioned", self.url)

    def heal(self) -> None:
        """Accept connections again, on the same port."""
        with self._cond:
            if not self._partitioned or self._stopping.is_set():
                return
            if self._listener is None:
                self._listener = _bind(self.port)
            self._listener.listen(_BACKLOG)
            if self._listener.getsockname()[1] != self.port:
                raise RuntimeError("the fault proxy lost its port while partitioned")
            self._partitioned = False
            self._cond.notify_all()
        log.info("fault proxy %s: healed", self.url)

    # ---- connections ------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while True:
            with self._cond:
                while self._partitioned and not self._stopping.is_set():
                    self._cond.wait()
                if self._stopping.is_set():
                    return
                listener = self._listener
            try:
                if listener is None:
                    raise OSError("no listening socket")
                sock, addr = listener.accept()
            except OSError:
                with self._cond:
                    if self._stopping.is_set():
                        return
                    partitioned = self._partitioned
                if not partitioned:
                    self._stopping.wait(0.01)  # e.g. out of file descriptors: do not spin
                continue
            with self._cond:
                if self._partitioned or self._stopping.is_set():
                    _cut(sock)
                    sock.close()
                    continue
                self._conns.add(sock)
                self.connections_accepted += 1
                self._threads = [t for t in self._threads if t.is_alive()]
                t = threading.Thread(
                    target=self._serve_connection,
                    args=(sock, addr),
                    name="fault-proxy-conn",
                    daemon=True,
                )
                self._threads.append(t)
            t.start()

    def _serve_connection(self, sock: socket.socket, addr: tuple[str, int]) -> None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _Handler(sock, addr, self)  # type: ignore[arg-type]
        except OSError as exc:  # reset by the client, cut by partition() or stop()
            log.debug("fault proxy connection %s ended: %s", addr, exc)
        except Exception:
            log.exception("fault proxy connection %s failed", addr)
        finally:
            with self._lock:
                self._conns.discard(sock)
            _cut(sock)
            sock.close()

    # ---- one request ------------------------------------------------------------------------
    def _pick(self, method: str, path: str) -> Fault | None:
        """The first rule that fires; every matching rule counts the request."""
        chosen: Fault | None = None
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path):
                    continue
                rule.matched += 1
                if chosen is None and rule.fires():
                    rule.fired += 1
                    chosen = rule.fault
        return chosen

    def _arrived(self, method: str, path: str, query: str) -> _Entry:
        entry = _Entry(method, path, query)
        with self._lock:
            self._seen.append(entry)
        return entry

    def _update(self, entry: _Entry, **changes: object) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(entry, name, value)
            if not entry.done:
                return
            seen = entry.freeze()
        if seen.action is not None:
            log.info(
                "fault proxy: %s %s -> %s (forwarded %s, server %s, client got %s)",
                seen.method,
                seen.path,
                seen.action.value,
                seen.forwarded,
                seen.upstream_status,
                seen.status,
            )
        else:
            log.debug("fault proxy: %s %s -> %s", seen.method, seen.path, seen.status)

    def _proxy(self, h: _Handler) -> None:
        method, target = h.command, h.path
        split = urllib.parse.urlsplit(target)
        entry = self._arrived(method, split.path, split.query)
        try:
            body = _read_body(h)
        except _BadRequest as exc:
            self._update(entry, status=400, done=True)
            self._send(h, 400, [("Content-Type", "text/plain")], str(exc).encode(), close=True)
            return
        fault = self._pick(method, split.path)
        action = fault.action if fault is not None else None
        self._update(entry, action=action, fault=fault)

        def give_up() -> None:  # stopping during a delay: close unanswered
            self._update(entry, done=True)
            h.close_connection = True

        delay_first = fault is not None and action is Action.DELAY and not fault.after_server
        if delay_first and self._stopping.wait(fault.delay_s):
            return give_up()
        up: _Upstream | None = None
        if fault is None or fault.forwards:
            self._update(entry, forwarded=True)
            up = self._forward(h, method, target, body)
            self._update(entry, upstream_status=up.status if up is not None else None)

        if fault is None or action is Action.DELAY:
            if fault is not None and fault.after_server and self._stopping.wait(fault.delay_s):
                return give_up()
            if up is None:
                self._update(entry, status=502, done=True)
                return self._gateway_page(h, 502)
            self._update(entry, status=up.status, done=True)
            return self._send(h, up.status, up.headers, up.body, head=method == "HEAD")

        if action is Action.DROP_BEFORE or action is Action.DROP_AFTER:
            self._update(entry, done=True)
            h.close_connection = True
            return None

        if action is Action.STATUS:
            status = fault.status or 503
            self._update(entry, status=status, done=True)
            return self._gateway_page(h, status, fault.body)

        # GARBAGE
        status = fault.status or 200
        self._update(entry, status=status, done=True)
        if fault.garbage is Garbage.TRUNCATED:
            if fault.body is not None:
                whole, headers = fault.body, [("Content-Type", "application/json")]
            elif up is not None and len(up.body) >= 2:
                whole, headers = up.body, up.headers
            else:
                whole, headers = _TRUNCATED, [("Content-Type", "application/json")]
            return self._send(
                h, status, headers, whole[: len(whole) // 2], length=len(whole), close=True
            )
        if fault.garbage is Garbage.WRONG_SHAPE:
            payload = _WRONG_SHAPE if fault.body is None else fault.body
            return self._send(h, status, [("Content-Type", "application/json")], payload)
        payload = _NOT_JSON if fault.body is None else fault.body
        return self._send(h, status, [("Content-Type", "text/html; charset=utf-8")], payload)

    def _forward(self, h: _Handler, method: str, target: str, body: bytes) -> _Upstream | None:
        """Send the request to the server on a fresh connection; None if it did not answer."""
        conn = http.client.HTTPConnection(
            self.upstream_host, self.upstream_port, timeout=self.upstream_timeout_s
        )
        listed = {
            token.strip().lower()
            for value in h.headers.get_all("Connection", [])
            for token in value.split(",")
        }
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            has_host = False
            for name, value in h.headers.items():
                low = name.lower()
                if low in _HOP_BY_HOP or low in listed:
                    continue
                has_host = has_host or low == "host"
                conn.putheader(name, value)
            if not has_host:
                conn.putheader("Host", f"{self.upstream_host}:{self.upstream_port}")
            if body or "Content-Length" in h.headers or "Transfer-Encoding" in h.headers:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            resp = conn.getresponse()
            data = resp.read()
            return _Upstream(resp.status, resp.reason, resp.getheaders(), data)
        except (OSError, http.client.HTTPException) as exc:
            log.warning(
                "fault proxy: upstream %s:%s failed on %s %s: %s",
                self.upstream_host,
                self.upstream_port,
                method,
                target,
                exc,
            )
            return None
        finally:
            conn.close()

    def _gateway_page(self, h: _Handler, status: int, body: bytes | None = None) -> None:
        if body is None:
            body = _GATEWAY_PAGE.format(status=status, reason=_reason(status)).encode()
        self._send(h, status, [("Content-Type", "text/html; charset=utf-8")], body)

    def _send(
        self,
        h: _Handler,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        length: int | None = None,
        close: bool = False,
        head: bool = False,
    ) -> None:
        """Write one response; ``length`` may lie about the body (then the connection closes)."""
        lines = [f"HTTP/1.1 {status} {_reason(status)}"]
        for name, value in headers:
            low = name.lower()
            if low in _HOP_BY_HOP and not (head and low == "content-length"):
                continue
            lines.append(f"{name}: {value}")
        if not head:
            lines.append(f"Content-Length: {len(body) if length is None else length}")
        if close:
            h.close_connection = True
        if h.close_connection:
            lines.append("Connection: close")
        h.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
