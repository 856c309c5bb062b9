"""``VirtualPrinter``: an ESC/POS receipt printer on a pseudo-terminal, for tests and the demo.

The kiosk's real serial adapter opens ``VirtualPrinter.port`` (the pty's slave side) exactly
as it opens /dev/ttyUSB0; the printer reads the master side on a thread, answers DLE EOT
status queries from its current state, and at each cut renders the receipt to
``receipt-NNNN.txt`` and ``receipt-NNNN.png`` in ``out_dir``.

Faults a technician meets, to be injected at any time: paper near end or out, cover open,
offline, a stall (it stops reading, like a jammed printer with a full buffer; with XON/XOFF
flow control it also stops the writer as an XOFF would, so writes block at once), and
unplugging (the port vanishes). With ``baudrate`` set it also notices a writer at another speed and treats its
bytes as line noise, and with ``pace=True`` it reads no faster than that baud rate allows,
so timings through the pty match a real serial line.

While it cannot print (paper out, cover open, offline) a receipt that arrives is counted in
``discarded`` and not rendered: the driver must not send one then.
"""

from __future__ import annotations

import logging
import os
import select
import termios
import threading
import time
import tty
from dataclasses import dataclass
from pathlib import Path

from kiosk.ports import PaperState

from . import status as st
from .escpos_text import columns_for
from .sim_model import Barcode, ParsedReceipt, QrCode
from .sim_parser import EscPosParser
from .sim_render import DEFAULT_FONT, to_png, to_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrintedReceipt:
    """One receipt as the virtual printer printed it."""

    number: int
    text: str
    qr_codes: tuple[str, ...]
    barcodes: tuple[str, ...]
    problems: tuple[str, ...]  # what a real printer would have got wrong; empty when clean
    cut: str  # "full" or "partial"
    raw: bytes
    text_path: Path
    png_path: Path


class VirtualPrinter:
    """A virtual ESC/POS printer on a pty; use ``with VirtualPrinter(dir) as sim: sim.port``."""

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        *,
        paper_mm: int = 58,
        encoding: str = "gb18030",
        flow_control: str = "none",
        baudrate: int | None = None,
        pace: bool = False,
        font_path: Path = DEFAULT_FONT,
    ) -> None:
        if pace and not baudrate:
            raise ValueError("pace=True needs the baudrate to pace at")
        self.out_dir = Path(out_dir)
        self.paper_mm = paper_mm
        self.columns = columns_for(paper_mm)
        self.encoding = encoding
        self.flow_control = flow_control
        self.baudrate = baudrate
        self.pace = pace
        self.font_path = font_path
        self._cv = threading.Condition()
        self._paper = PaperState.OK
        self._cover_open = False
        self._offline = False
        self._stalled = False
        self._stall_after: int | None = None
        self._receipts: list[PrintedReceipt] = []
        self.discarded = 0  # receipts cut while the printer could not print
        self.received = 0  # bytes read, status queries included
        self.garbled = 0  # bytes ignored as line noise (writer at another baud rate)
        self.status_queries: list[int] = []
        self._line_free_at = 0.0
        self._master = self._slave = -1
        self._port = ""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._parser = EscPosParser(
            encoding=encoding,
            columns=self.columns,
            on_status=self._answer,
            on_receipt=self._on_receipt,
        )

    # ---- life -------------------------------------------------------------------------------
    @property
    def port(self) -> str:
        """The device path the serial adapter opens (the pty's slave side)."""
        if not self._port:
            raise RuntimeError("the virtual printer is not started: call start() first")
        return self._port

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> VirtualPrinter:
        if self._thread is not None:
            return self
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo or line editing before the adapter configures it
        self._port = os.ttyname(self._slave)
        self._thread = threading.Thread(target=self._run, name="virtual-printer", daemon=True)
        self._thread.start()
        log.info("virtual printer on %s, receipts in %s", self._port, self.out_dir)
        return self

    def stop(self) -> None:
        """Stop reading and close the pty (the port disappears); idempotent."""
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1

    def __enter__(self) -> VirtualPrinter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- faults -----------------------------------------------------------------------------
    def set_paper(self, state: PaperState) -> None:
        with self._cv:
            self._paper = state

    def set_cover_open(self, is_open: bool = True) -> None:
        with self._cv:
            self._cover_open = is_open

    def set_offline(self, offline: bool = True) -> None:
        with self._cv:
            self._offline = offline

    def stall(self, after_bytes: int = 0) -> None:
        """Stop reading after ``after_bytes`` more bytes (0: at once), until ``resume()``."""
        with self._cv:
            self._stall_after = after_bytes
            if after_bytes == 0:
                self._begin_stall()

    def resume(self) -> None:
        with self._cv:
            self._stalled, self._stall_after = False, None
            if self.flow_control == "xonxoff" and self._slave >= 0:
                termios.tcflow(self._slave, termios.TCOON)  # as if XON had arrived
            self._cv.notify_all()

    def unplug(self) -> None:
        """The USB cable comes out: the port vanishes and the writer gets I/O errors."""
        self.stop()

    def _begin_stall(self) -> None:
        self._stalled, self._stall_after = True, None
        if self.flow_control == "xonxoff":
            # A real printer with a full buffer sends XOFF. The sim stops the writer's side of
            # the pty directly (what the line discipline does on XOFF): an XOFF or XON byte
            # could be thrown away by the adapter's input flush when it reopens the port.
            termios.tcflow(self._slave, termios.TCOOFF)

    # ---- what it printed --------------------------------------------------------------------
    @property
    def receipts(self) -> list[PrintedReceipt]:
        with self._cv:
            return list(self._receipts)

    def wait_for_receipts(self, count: int, timeout_s: float = 5.0) -> list[PrintedReceipt]:
        """The first ``count`` receipts, waiting up to ``timeout_s`` for them to be cut."""
        with self._cv:
            self._cv.wait_for(lambda: len(self._receipts) >= count, timeout=timeout_s)
            if len(self._receipts) < count:
                raise TimeoutError(
                    f"virtual printer has {len(self._receipts)} receipts, expected {count} "
                    f"({self._parser.pending} bytes of an unfinished command pending)"
                )
            return self._receipts[:count]

    def status_byte(self, n: int) -> int | None:
        """The answer to DLE EOT ``n`` in the current state (None: not a query it answers)."""
        with self._cv:
            value = 0x12
            out = self._paper is PaperState.OUT
            if n == st.PRINTER:
                return value | (st.OFFLINE if out or self._cover_open or self._offline else 0)
            if n == st.OFFLINE_CAUSE:
                return (
                    value
                    | (st.COVER_OPEN if self._cover_open else 0)
                    | (st.PAPER_END_STOP if out else 0)
                )
            if n == st.ROLL_SENSOR:
                near = self._paper is PaperState.NEAR_END
                return value | (st.PAPER_OUT if out else st.NEAR_END if near else 0)
            if n == 3:  # error cause: none of its faults are recoverable-error kinds
                return value
            return None

    def _can_print(self) -> bool:
        return not (self._paper is PaperState.OUT or self._cover_open or self._offline)

    # ---- the reading thread -----------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                with self._cv:
                    self._cv.wait_for(lambda: not self._stalled or self._stop.is_set())
                ready, _, _ = select.select([self._master], [], [], 0.05)
                if ready and not self._stop.is_set():
                    self._read_once()
        except Exception:
            log.exception("virtual printer reader failed")

    def _read_once(self) -> None:
        with self._cv:  # a stall() between select and read must still stop this read
            if self._stalled:
                return
            limit = 4096 if self._stall_after is None else self._stall_after
            if self.pace and self.baudrate:
                limit = min(limit, max(1, self.baudrate // 1000))  # ~10 ms of line time
            try:
                data = os.read(self._master, limit)
            except OSError:  # no slave open for a moment: nothing to read
                data = b""
            if self._stall_after is not None and data:
                self._stall_after -= len(data)
                if self._stall_after <= 0:
                    self._begin_stall()  # before answering: the writer is stopped first
        if not data:
            time.sleep(0.01)
            return
        self.received += len(data)
        if self.pace and self.baudrate:
            now = time.monotonic()
            self._line_free_at = max(self._line_free_at, now) + len(data) * 10 / self.baudrate
            time.sleep(max(0.0, self._line_free_at - now))
        if self.baudrate and self._line_speed() != self.baudrate:
            self.garbled += len(data)
            return
        self._parser.feed(data)

    def _line_speed(self) -> int | None:
        speed = termios.tcgetattr(self._slave)[4]
        for baud in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200):
            if getattr(termios, f"B{baud}") == speed:
                return baud
        return None

    def _answer(self, n: int) -> None:
        self.status_queries.append(n)
        value = self.status_byte(n)
        if value is not None:
            os.write(self._master, bytes([value]))

    def _on_receipt(self, parsed: ParsedReceipt) -> None:
        with self._cv:
            if not self._can_print():
                self.discarded += 1
                log.warning("virtual printer cannot print (paper/cover/offline): receipt discarded")
                return
            number = len(self._receipts) + 1
        stem = self.out_dir / f"receipt-{number:04d}"
        text = to_text(parsed, self.columns)
        text_path, png_path = stem.with_suffix(".txt"), stem.with_suffix(".png")
        text_path.write_text(text, encoding="utf-8")
        to_png(parsed, self.paper_mm, self.columns, self.font_path).save(png_path)
        printed = PrintedReceipt(
            number=number,
            text=text,
            qr_codes=tuple(b.data for b in parsed.blocks if isinstance(b, QrCode)),
            barcodes=tuple(b.data for b in parsed.blocks if isinstance(b, Barcode)),
            problems=tuple(parsed.problems),
            cut=parsed.cut,
            raw=parsed.raw,
            text_path=text_path,
            png_path=png_path,
        )
        with self._cv:
            self._receipts.append(printed)
            self._cv.notify_all()
