"""Log lines that carry their transaction id, written for journald.

Every line logged while a transaction runs starts with ``TXN=<txn_id>`` (the same id the
receipt prints and the store server keys on), so ``kiosk logs <txn>`` and
``journalctl -u kiosk --grep <txn>`` find all of them, whatever logger wrote them.

- ``txn_context(txn_id)``: a ``with`` block whose log lines carry ``txn_id``.
- ``txn_scope()`` + ``bind_txn(txn_id)``: for a flow that learns its id only inside the block
  (the engine makes the id after taking its lock); the id is dropped when the scope ends.
- ``TxnFilter``: puts the current id on each record as ``record.txn_id`` (None outside).
- ``JournaldFormatter``: ``<priority>TXN=<id> logger: message``, one prefix per line, so a
  traceback stays greppable and keeps its priority when journald reads stderr line by line.
- ``configure_logging(level)``: python-systemd's JournalHandler when it is installed and the
  kiosk runs under systemd; else stderr, which systemd hands to journald (``JOURNAL_STREAM``);
  on a terminal, stderr with times.

The id lives in a ``contextvars.ContextVar``: each thread (UI, engine worker, sync) has its
own, so the sync thread's lines are never tagged with the member's transaction.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from typing import IO

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("kiosk_txn_id", default=None)
_scope: contextvars.ContextVar[list[str | None] | None] = contextvars.ContextVar(
    "kiosk_txn_scope", default=None
)

# syslog priorities, as journald reads them from a "<N>" line prefix
PRIORITIES = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def current_txn_id() -> str | None:
    """The transaction this thread is working on, or None."""
    scope = _scope.get()
    if scope is not None and scope and scope[0] is not None:
        return scope[0]
    return _current.get()


@contextlib.contextmanager
def txn_context(txn_id: str) -> Iterator[str]:
    """Log lines inside the block carry ``TXN=<txn_id>``; nested blocks restore the outer id."""
    token = _current.set(txn_id)
    scope_token = _scope.set(None)  # an inner explicit id wins over an enclosing scope's
    try:
        yield txn_id
    finally:
        _scope.reset(scope_token)
        _current.reset(token)


@contextlib.contextmanager
def txn_scope() -> Iterator[None]:
    """A block in which ``bind_txn`` may name the transaction; the name ends with the block."""
    token = _scope.set([None])
    try:
        yield
    finally:
        _scope.reset(token)


def bind_txn(txn_id: str | None) -> None:
    """Name the transaction of the enclosing ``txn_scope`` (no-op outside one)."""
    scope = _scope.get()
    if scope is not None:
        scope[:] = [txn_id]


def priority(levelno: int) -> int:
    """The syslog priority of a logging level (levels between two round to the more severe)."""
    for level in sorted(PRIORITIES, reverse=True):
        if levelno >= level:
            return PRIORITIES[level]
    return 7


class TxnFilter(logging.Filter):
    """Adds ``record.txn_id`` (the current transaction, or one given with ``extra=``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "txn_id", None) is None:
            record.txn_id = current_txn_id()
        return True


class JournaldFormatter(logging.Formatter):
    """``[<N>]TXN=<id> logger: message`` on every line of the record (traceback included).

    ``level_prefix``: add journald's ``<N>`` priority prefix (stderr under systemd). ``times``:
    start each line with a local timestamp (a terminal; journald stamps lines itself).
    """

    def __init__(self, *, level_prefix: bool = True, times: bool = False) -> None:
        super().__init__()
        self.level_prefix = level_prefix
        self.times = times

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)  # message, then exception and stack, if any
        txn = getattr(record, "txn_id", None)
        if txn is None:
            txn = current_txn_id()
        head = f"<{priority(record.levelno)}>" if self.level_prefix else ""
        if self.times:
            head += f"{self.formatTime(record)} {record.levelname} "
        if txn:
            head += f"TXN={txn} "
        head += f"{record.name}: "
        return "\n".join(head + line for line in text.splitlines() or [""])


def journal_stream_is(stream: IO[str], env: Mapping[str, str] | None = None) -> bool:
    """True when ``stream`` is the journald stream systemd connected (``$JOURNAL_STREAM``)."""
    value = (os.environ if env is None else env).get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    try:
        st = os.fstat(stream.fileno())
        return bool(value) and (st.st_dev, st.st_ino) == (int(dev), int(ino))
    except (OSError, ValueError, AttributeError):
        return False


def _journal_handler() -> logging.Handler | None:
    try:
        from systemd.journal import JournalHandler  # type: ignore[import-not-found]
    except ImportError:
        return None
    return JournalHandler(SYSLOG_IDENTIFIER="kiosk")


def configure_logging(
    level: str | int = "INFO",
    *,
    stream: IO[str] | None = None,
    env: Mapping[str, str] | None = None,
    native: bool = True,
) -> logging.Handler:
    """Route the root logger to journald (or the terminal) with transaction ids; returns the
    handler. It replaces the root's handlers (``logging.basicConfig``'s too, which would print
    every line twice), so calling it twice is harmless."""
    stream = sys.stderr if stream is None else stream
    under_journald = journal_stream_is(stream, env)
    handler = _journal_handler() if native and under_journald else None
    if handler is not None:
        # JournalHandler sets PRIORITY itself; the message keeps the TXN= prefix for --grep.
        handler.setFormatter(JournaldFormatter(level_prefix=False))
    else:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(
            JournaldFormatter(level_prefix=under_journald, times=not under_journald)
        )
    handler.addFilter(TxnFilter())
    handler.set_name("kiosk-logctx")
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
