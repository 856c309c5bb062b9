"""An ESC/POS stream parser for the virtual printer: bytes in, printed blocks and events out.

It understands what a receipt printer needs to: text (GB18030/GBK inside FS & ... FS ., code
page 437 outside, as a printer in its default mode would print it), bold, sizes (ESC !, GS !,
FS !), alignment, native QR codes (GS ( k), barcodes (GS k), raster images (GS v 0), cuts
(GS V) and real-time status queries (DLE EOT n, answered through ``on_status`` as they come).

Bytes arrive in arbitrary pieces (a cut may come in a later read), so ``feed()`` keeps an
incomplete command until the rest arrives. What a real printer would do wrong with the input
(an unknown command, a line wider than the paper, high bytes outside Chinese mode, a bad
multi-byte code) is listed in the receipt's ``problems`` so tests can insist on none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .sim_model import (
    Barcode,
    Block,
    ParsedReceipt,
    QrCode,
    RasterImage,
    Span,
    TextLine,
    code128_text,
)

log = logging.getLogger(__name__)

ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10
_ONE_PARAM_ESC = set(b"!E-GadtM3J{VRr e")
_ONE_PARAM_GS = set(b"!BhwHfab")
_ALIGN = {0: "left", 48: "left", 1: "center", 49: "center", 2: "right", 50: "right"}
_QR_EC = {48: "L", 49: "M", 50: "Q", 51: "H"}
_BARCODES = {4: "CODE39", 69: "CODE39", 67: "EAN13", 2: "EAN13", 72: "CODE93", 73: "CODE128"}


class EscPosParser:
    """Feed it bytes; it calls ``on_status(n)`` per DLE EOT n and ``on_receipt`` per cut."""

    def __init__(
        self,
        *,
        encoding: str,
        columns: int,
        on_status: Callable[[int], None],
        on_receipt: Callable[[ParsedReceipt], None],
    ) -> None:
        self.encoding = encoding
        self.columns = columns
        self._on_status = on_status
        self._on_receipt = on_receipt
        self._buf = bytearray()
        self._receipt = ParsedReceipt()
        self._raw = bytearray()
        self._spans: list[Span] = []
        self._line_align = "left"
        self._cut: str | None = None
        self._reset()

    def _reset(self) -> None:
        """ESC @: modes back to their defaults (Chinese mode off: the sim is strict)."""
        self.chinese = False
        self.bold = False
        self.ank_size = (1, 1)
        self.cjk_size = (1, 1)
        self.align = "left"
        self.qr_module, self.qr_ec, self.qr_data = 3, "L", b""
        self.bc_height, self.bc_module, self.bc_text = 162, 3, 0

    def feed(self, data: bytes) -> None:
        self._buf += data
        i = 0
        while i < len(self._buf):
            end = self._step(i)
            if end is None:
                break  # an incomplete command: wait for the rest
            self._raw += self._buf[i:end]
            i = end
            if self._cut is not None:
                self._finish_receipt()
        del self._buf[:i]

    @property
    def pending(self) -> int:
        """Bytes held back as the start of an incomplete command."""
        return len(self._buf)

    # ---- output -----------------------------------------------------------------------------
    def _problem(self, text: str) -> None:
        self._receipt.problems.append(text)

    def _char(self, ch: str, columns: int) -> None:
        wide = columns == 2
        w, h = self.cjk_size if wide else self.ank_size
        if not self._spans:
            self._line_align = self.align
        last = self._spans[-1] if self._spans else None
        if last and (last.bold, last.width, last.height) == (self.bold, w, h):
            last.text += ch
            last.cells.append(columns)
        else:
            self._spans.append(Span(ch, self.bold, w, h, [columns]))

    def _end_line(self) -> None:
        line = TextLine(self._spans, self._line_align)
        self._spans = []
        self._line_align = self.align
        if line.columns > self.columns:
            self._problem(
                f"line {line.text!r} is {line.columns} columns wide; the paper holds "
                f"{self.columns}: the printer would wrap it"
            )
        self._receipt.blocks.append(line)

    def _block(self, block: Block) -> None:
        if self._spans:
            self._end_line()
        self._receipt.blocks.append(block)

    def _finish_receipt(self) -> None:
        self._receipt.raw, self._receipt.cut = bytes(self._raw), self._cut or ""
        receipt, self._receipt, self._raw, self._cut = (
            self._receipt,
            ParsedReceipt(),
            bytearray(),
            None,
        )
        self._on_receipt(receipt)

    # ---- one item at self._buf[i] -----------------------------------------------------------
    def _step(self, i: int) -> int | None:
        buf, b = self._buf, self._buf[i]
        if b == 0x0A:
            self._end_line()
            return i + 1
        if b == ESC:
            return self._esc(i)
        if b == GS:
            return self._gs(i)
        if b == FS:
            return self._fs(i)
        if b == DLE:
            return self._dle(i)
        if b in (0x0D, 0x00):
            return i + 1
        if b == 0x09:
            self._char(" ", 1)
            return i + 1
        if b < 0x20 or b == 0x7F:
            self._problem(f"unknown control byte 0x{b:02x}")
            return i + 1
        if b < 0x80:
            self._char(chr(b), 1)
            return i + 1
        if self.chinese and 0x81 <= b <= 0xFE:
            if i + 1 >= len(buf):
                return None
            size = 4 if 0x30 <= buf[i + 1] <= 0x39 else 2
            if i + size > len(buf):
                return None
            code = bytes(buf[i : i + size])
            try:
                ch = code.decode(self.encoding)
            except UnicodeDecodeError:
                self._problem(f"{code.hex()} is not a valid {self.encoding} character")
                ch = "\ufffd"
            self._char(ch, 2)
            return i + size
        ch = bytes([b]).decode("cp437")
        self._problem(f"byte 0x{b:02x} outside Chinese mode printed as code page 437 {ch!r}")
        self._char(ch, 1)
        return i + 1

    def _esc(self, i: int) -> int | None:
        buf = self._buf
        if i + 1 >= len(buf):
            return None
        c = buf[i + 1]
        if c == ord("@"):
            self._reset()
            return i + 2
        if c in b"2<":
            return i + 2
        if c == ord("p"):
            return i + 5 if i + 5 <= len(buf) else None
        if c == ord("c"):
            return i + 4 if i + 4 <= len(buf) else None
        if c == ord("*"):
            if i + 5 > len(buf):
                return None
            dots = buf[i + 3] + buf[i + 4] * 256
            end = i + 5 + dots * (1 if buf[i + 2] in (0, 1) else 3)
            if end > len(buf):
                return None
            self._problem("ESC * column bit image: not rendered")
            return end
        if c not in _ONE_PARAM_ESC:
            self._problem(f"unknown command ESC 0x{c:02x}")
            return i + 2
        if i + 2 >= len(buf):
            return None
        n = buf[i + 2]
        if c == ord("!"):
            self.bold = bool(n & 0x08)
            self.ank_size = (2 if n & 0x20 else 1, 2 if n & 0x10 else 1)
        elif c == ord("E"):
            self.bold = bool(n & 1)
        elif c == ord("a"):
            self.align = _ALIGN.get(n, "left")
            if not self._spans:
                self._line_align = self.align
        elif c == ord("d"):
            if self._spans:
                self._end_line()
                n -= 1
            for _ in range(max(n, 0)):
                self._end_line()
        elif c == ord("t") and n != 0:
            self._problem(f"ESC t {n}: the sim only has code page 437")
        return i + 3

    def _gs(self, i: int) -> int | None:
        buf = self._buf
        if i + 1 >= len(buf):
            return None
        c = buf[i + 1]
        if c in _ONE_PARAM_GS:
            if i + 2 >= len(buf):
                return None
            n = buf[i + 2]
            if c == ord("!"):
                self.ank_size = self.cjk_size = ((n >> 4) + 1, (n & 0x0F) + 1)
            elif c == ord("h"):
                self.bc_height = n
            elif c == ord("w"):
                self.bc_module = n
            elif c == ord("H"):
                self.bc_text = n
            return i + 3
        if c in b"LWP":
            return i + 4 if i + 4 <= len(buf) else None
        if c == ord("V"):
            if i + 2 >= len(buf):
                return None
            m = buf[i + 2]
            size = 4 if m >= 65 else 3
            if i + size > len(buf):
                return None
            if self._spans:
                self._end_line()
            self._cut = "partial" if m in (1, 49, 66, 98, 104) else "full"
            return i + size
        if c == ord("k"):
            return self._barcode(i)
        if c == ord("("):
            return self._gs_paren(i)
        if c == ord("v"):
            if i + 8 > len(buf):
                return None
            width, height = buf[i + 4] + buf[i + 5] * 256, buf[i + 6] + buf[i + 7] * 256
            end = i + 8 + width * height
            if end > len(buf):
                return None
            self._block(RasterImage(width, height, bytes(buf[i + 8 : end]), self.align))
            return end
        self._problem(f"unknown command GS 0x{c:02x}")
        return i + 2

    def _gs_paren(self, i: int) -> int | None:
        buf = self._buf
        if i + 5 > len(buf):
            return None
        end = i + 5 + buf[i + 3] + buf[i + 4] * 256
        if end > len(buf):
            return None
        fn_class, body = buf[i + 2], bytes(buf[i + 5 : end])
        if fn_class != ord("k") or len(body) < 2 or body[0] != 0x31:
            self._problem(f"GS ( {chr(fn_class)} function {body[:2].hex()}: not rendered")
            return end
        fn, params = body[1], body[2:]
        if fn == 67 and params:
            self.qr_module = params[0]
        elif fn == 69 and params:
            self.qr_ec = _QR_EC.get(params[0], "L")
        elif fn == 80:
            self.qr_data = params[1:]
        elif fn == 81:
            text = self.qr_data.decode("utf-8", "replace")
            self._block(QrCode(text, self.qr_module, self.qr_ec, self.align))
        return end

    def _barcode(self, i: int) -> int | None:
        buf = self._buf
        if i + 3 >= len(buf):
            return None
        m = buf[i + 2]
        if m <= 6:
            nul = buf.find(0, i + 3)
            if nul < 0:
                return None
            data, end = bytes(buf[i + 3 : nul]), nul + 1
        else:
            end = i + 4 + buf[i + 3]
            if end > len(buf):
                return None
            data = bytes(buf[i + 4 : end])
        symbology = _BARCODES.get(m, f"type {m}")
        text = code128_text(data) if symbology == "CODE128" else data.decode("ascii", "replace")
        self._block(
            Barcode(
                symbology,
                text,
                self.bc_module,
                self.bc_height,
                self.bc_text in (2, 3, 50, 51),
                self.align,
            )
        )
        return end

    def _fs(self, i: int) -> int | None:
        buf = self._buf
        if i + 1 >= len(buf):
            return None
        c = buf[i + 1]
        if c == ord("&"):
            self.chinese = True
            return i + 2
        if c == ord("."):
            self.chinese = False
            return i + 2
        if c in b"!C-W":
            if i + 2 >= len(buf):
                return None
            if c == ord("!"):
                n = buf[i + 2]
                self.cjk_size = (2 if n & 0x04 else 1, 2 if n & 0x08 else 1)
            return i + 3
        if c == ord("S"):
            return i + 4 if i + 4 <= len(buf) else None
        self._problem(f"unknown command FS 0x{c:02x}")
        return i + 2

    def _dle(self, i: int) -> int | None:
        buf = self._buf
        if i + 2 >= len(buf):
            return None
        c = buf[i + 1]
        if c == 0x04:
            self._on_status(buf[i + 2])
            return i + 3
        if c == 0x05:
            return i + 3
        if c == 0x14:
            return i + 5 if i + 5 <= len(buf) else None
        self._problem(f"unknown command DLE 0x{c:02x}")
        return i + 2
