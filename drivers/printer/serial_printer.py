"""``SerialReceiptPrinter``: the ReceiptPrinter port over an ESC/POS printer on a serial line.

pyserial carries the bytes; python-escpos builds them (``templates``) and names the status
queries. python-escpos's own ``Serial`` printer is not used because it has no write timeout
and no RTS/CTS setting, and its ``close()`` drains the port, which blocks on a stalled printer.

A print is: lay the receipt out (no I/O), ask DLE EOT 1, 2, 4 (refuse on paper out, cover
open, offline; print on near end with a warning), write in chunks each bounded by the write
timeout, then ask DLE EOT again. That last answer is the delivery check: the printer answers
only once every byte before the query has reached it, so a printer that stopped reading is
caught even when the receipt fitted in the kernel's buffer and the write itself returned.

Every failure is a ``PrinterError`` saying what to do; the caller keeps the receipt to reprint.
After an I/O failure the kernel's unsent bytes are discarded (so close() does not wait on
them) and the port is reopened on the next call. Bytes already in the USB adapter or the
printer cannot be recalled: after a stall the first copy may still come out when the printer
recovers, so a receipt prints at least once, possibly twice, never zero times.
"""

from __future__ import annotations

import errno
import logging
import termios
import threading
from collections.abc import Callable

import serial

from kiosk.config import PrinterSection
from kiosk.domain.receipts import Receipt
from kiosk.errors import PrinterError
from kiosk.ports import PaperState, PrinterStatus

from . import status as st
from .templates import render_receipt

log = logging.getLogger(__name__)

FLOW_CONTROLS = ("none", "rtscts", "xonxoff")
CHUNK_BYTES = 512  # the write timeout bounds each chunk: "no progress for write_timeout_s"
_NOT_FOUND = (errno.ENOENT, errno.ENODEV, errno.ENXIO)
# pyserial lets termios.error (not an OSError) through from tcflush and friends
_IO_ERRORS = (serial.SerialException, OSError, termios.error)


class SerialReceiptPrinter:
    """An ESC/POS receipt printer on ``port``; implements ``kiosk.ports.ReceiptPrinter``.

    ``status_timeout_s`` bounds the wait for a status answer before printing; after writing,
    the wait is ``write_timeout_s`` plus the time the bytes need on the wire at ``baudrate``.
    ``on_close`` runs once at ``close()`` (``make_printer`` stops its simulator there).
    Thread-safe: the UI and a health check may call it at the same time.
    """

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 19200,
        flow_control: str = "none",
        paper_mm: int = 58,
        encoding: str = "gb18030",
        write_timeout_s: float = 5.0,
        status_timeout_s: float = 1.0,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        if flow_control not in FLOW_CONTROLS:
            raise ValueError(f"flow_control must be one of {FLOW_CONTROLS}, got {flow_control!r}")
        self.port = port
        self.baudrate = baudrate
        self.flow_control = flow_control
        self.paper_mm = paper_mm
        self.encoding = encoding
        self.write_timeout_s = write_timeout_s
        self.status_timeout_s = status_timeout_s
        self._on_close = on_close
        self._serial: serial.Serial | None = None
        self._closed = False  # by close(): a late call from a worker must not open it again
        self._lock = threading.Lock()
        self._last: PrinterStatus | None = None

    @classmethod
    def from_config(
        cls, cfg: PrinterSection, *, port: str | None = None, **kwargs: object
    ) -> SerialReceiptPrinter:
        """A printer as ``[printer]`` describes it; ``port`` overrides cfg.port (a simulator's)."""
        return cls(
            port or cfg.port,
            baudrate=cfg.baudrate,
            flow_control=cfg.flow_control,
            paper_mm=cfg.paper_mm,
            encoding=cfg.encoding,
            write_timeout_s=cfg.write_timeout_s,
            **kwargs,  # type: ignore[arg-type]
        )

    @property
    def last_status(self) -> PrinterStatus | None:
        """The status from the last query (a near-end warning stays here after a print)."""
        return self._last

    # ---- ReceiptPrinter ---------------------------------------------------------------------
    def status(self) -> PrinterStatus:
        """Ask the printer (DLE EOT 1, 2, 4); PrinterError if it cannot be reached or is silent."""
        with self._lock:
            ser = self._open()
            try:
                self._last = self._read_status(ser, self.status_timeout_s)
            except PrinterError:
                self._drop()
                raise
            return self._last

    def print_receipt(self, receipt: Receipt) -> None:
        """Check status, print and cut; PrinterError on any failure (nothing is retried here)."""
        try:
            data = render_receipt(receipt, paper_mm=self.paper_mm, encoding=self.encoding)
        except (TypeError, ValueError) as exc:
            raise PrinterError(
                f"cannot lay out a {type(receipt).__name__} for the printer on {self.port} "
                f"({exc}): a software fault, report it with the kiosk log"
            ) from exc
        self._send(data, what=type(receipt).__name__)

    def _send(self, data: bytes, *, what: str) -> None:
        """Check status, write ``data`` (a whole receipt, ending in a cut) and confirm delivery."""
        with self._lock:
            ser = self._open()
            try:
                before = self._read_status(ser, self.status_timeout_s)
                self._last = before
                if not before.ready:
                    log.warning("not printing %s: %s", what, before.detail)
                    raise _NotReady(before.detail)
                if before.paper is PaperState.NEAR_END:
                    log.warning("printing %s anyway: %s", what, before.detail)
                self._write(ser, data)
                wire_s = len(data) * 10 / self.baudrate
                after = self._read_status(ser, self.write_timeout_s + wire_s, sent=len(data))
                self._last = after
            except PrinterError as exc:
                if not isinstance(exc, _NotReady):
                    self._drop()
                raise
            if not after.ready:
                raise PrinterError(
                    f"{after.detail}; it happened while printing, so the receipt may be "
                    "incomplete: fix it, then reprint"
                )
            log.info("printed %s: %d bytes on %s", what, len(data), self.port)

    def close(self) -> None:
        """Close the port (bytes already written still go out) and run ``on_close`` once."""
        with self._lock:
            self._closed = True
            if self._serial is not None:
                try:
                    self._serial.close()
                except _IO_ERRORS as exc:
                    log.debug("closing %s: %s", self.port, exc)
                self._serial = None
            hook, self._on_close = self._on_close, None
        if hook is not None:
            hook()

    # ---- port -------------------------------------------------------------------------------
    def _open(self) -> serial.Serial:
        if self._closed:
            raise PrinterError(f"printer on {self.port} is closed: the kiosk is stopping")
        if self._serial is not None and self._serial.is_open:
            return self._serial
        try:
            self._serial = serial.Serial(
                port=self.port,
                baudrate=self.baudrate,
                timeout=self.status_timeout_s,
                write_timeout=self.write_timeout_s,
                xonxoff=self.flow_control == "xonxoff",
                rtscts=self.flow_control == "rtscts",
                exclusive=True,
            )
        except serial.SerialException as exc:
            raise PrinterError(self._open_problem(exc)) from exc
        log.info("opened printer port %s at %d baud", self.port, self.baudrate)
        return self._serial

    def _open_problem(self, exc: serial.SerialException) -> str:
        code = exc.errno
        if code in _NOT_FOUND:
            return (
                f"printer port {self.port} not found: check the printer's USB cable and power, "
                "and [printer] port in kiosk.toml"
            )
        if code == errno.EACCES:
            return (
                f"no permission to open printer port {self.port}: add the kiosk user to the "
                "dialout group"
            )
        if "lock" in str(exc).lower() or code in (errno.EBUSY, errno.EAGAIN):
            return f"printer port {self.port} is in use by another program: stop it, then retry"
        return f"cannot open printer port {self.port} ({exc}): check the cable and the port"

    def _drop(self) -> None:
        """Discard unsent bytes and close, so the next call starts on a fresh port."""
        ser, self._serial = self._serial, None
        if ser is None:
            return
        for action in (ser.reset_output_buffer, ser.close):
            try:
                action()
            except _IO_ERRORS as exc:
                log.debug("dropping %s: %s", self.port, exc)

    # ---- I/O --------------------------------------------------------------------------------
    def _write(self, ser: serial.Serial, data: bytes) -> None:
        sent = 0
        try:
            for start in range(0, len(data), CHUNK_BYTES):
                chunk = data[start : start + CHUNK_BYTES]
                ser.write(chunk)
                sent += len(chunk)
        except serial.SerialTimeoutException as exc:
            raise PrinterError(
                f"printer on {self.port} stopped taking data: write timed out after "
                f"{self.write_timeout_s:g} s with {sent} of {len(data)} bytes sent: check it for "
                "a paper jam or a lost connection, then reprint"
            ) from exc
        except _IO_ERRORS as exc:
            raise self._lost(exc) from exc

    def _read_status(self, ser: serial.Serial, wait_s: float, sent: int = 0) -> PrinterStatus:
        """Ask DLE EOT 1, 2 and 4; ``sent`` > 0 means a receipt was just written before them."""
        try:
            ser.reset_input_buffer()  # a late answer to an earlier, timed-out query
            # Only the first answer waits for the receipt ahead of it; the others come at once.
            answers = [self._ask(ser, st.PRINTER, wait_s, sent)]
            answers += [self._ask(ser, n, self.status_timeout_s, sent) for n in st.QUERIES[1:]]
        except serial.SerialTimeoutException as exc:
            # pyserial also waits for the port to be writable again after the last byte, so
            # an XOFF (or CTS dropping) right after a query lands here: the printer holds the line.
            raise PrinterError(
                f"printer on {self.port} stopped taking data: write timed out after "
                f"{self.write_timeout_s:g} s sending a status query (flow control holds the "
                "line): check it for a paper jam, an open cover or a lost connection, then reprint"
            ) from exc
        except _IO_ERRORS as exc:
            raise self._lost(exc) from exc
        return st.interpret(st.RawStatus(*answers), self.port, self.paper_mm)

    def _ask(self, ser: serial.Serial, n: int, wait_s: float, sent: int) -> int:
        ser.timeout = wait_s
        ser.write(st.query(n))
        answer = ser.read(1)
        if not answer:
            raise self._silent(sent, wait_s)
        if not st.is_status_byte(answer[0]):
            raise _NotReady(
                f"printer on {self.port} answered status query {n} with 0x{answer[0]:02x}, "
                f"which is not a status byte: check that the printer is set to "
                f"{self.baudrate} baud, 8 data bits, no parity ([printer] baudrate)"
            )
        return answer[0]

    def _silent(self, sent: int, wait_s: float) -> PrinterError:
        if sent:
            return PrinterError(
                f"printer on {self.port} stopped taking data: no answer within {wait_s:.1f} s "
                f"after {sent} bytes were written (write timeout {self.write_timeout_s:g} s): "
                "check it for a paper jam, a cover or a lost connection, then reprint"
            )
        return PrinterError(
            f"printer on {self.port} does not answer status queries (waited {wait_s:g} s): "
            f"check that it is switched on and connected, and set to {self.baudrate} baud"
        )

    def _lost(self, exc: BaseException) -> PrinterError:
        return PrinterError(
            f"lost the connection to the printer on {self.port} ({exc}): check the USB cable "
            "and the printer's power, then reprint"
        )


class _NotReady(PrinterError):
    """The printer answered, so the port is fine: keep it open."""
