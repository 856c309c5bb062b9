"""A receipt under construction: python-escpos's command layer on a ``Dummy`` printer.

``Dummy`` records the bytes each command would send, so a template is a pure function: the
same receipt always gives the same bytes (the golden files rely on that), and nothing here
touches a port. Text goes through ``escpos_text`` (the only place that emits Chinese); sizes
use ``GS !``, which Chinese printers apply to full-width characters too (``ESC !`` does not).
"""

from __future__ import annotations

from escpos.constants import QR_ECLEVEL_M
from escpos.printer import Dummy

from .escpos_text import columns_for, display_width, two_columns, wrap, write_line

QR_MODULE_DOTS = {58: 4, 80: 5}  # a ~150-byte proof is about 49 modules: 196 / 245 dots wide
BARCODE_MODULE_DOTS = 2  # 0.25 mm bars; CODE128 of "CPN-" + 10 is 189 modules = 378 dots
BARCODE_HEIGHT_DOTS = 72


class ReceiptBuilder:
    """Lines, pairs, codes and a cut for one receipt of ``paper_mm`` width in ``encoding``."""

    def __init__(self, paper_mm: int, encoding: str) -> None:
        self.paper_mm = paper_mm
        self.columns = columns_for(paper_mm)
        self.encoding = encoding
        self._p = Dummy()
        self._p.hw("INIT")  # ESC @: whatever a previous (maybe cut-short) job left is reset

    # ---- text --------------------------------------------------------------------------
    def line(self, text: str = "", *, bold: bool = False) -> None:
        """Left-aligned text, wrapped to the paper width."""
        if bold:
            self._p.set(bold=True)
        for part in wrap(text, self.columns) if text else [""]:
            write_line(self._p, part, self.encoding)
        if bold:
            self._p.set(bold=False)

    def center(self, text: str, *, bold: bool = False, big: bool = False) -> None:
        """Centred text; ``big`` is double width and height (half as many columns)."""
        self._p.set(align="center", bold=bold or None)
        if big:
            self._p.set(custom_size=True, width=2, height=2)
        for part in wrap(text, self.columns // 2 if big else self.columns):
            write_line(self._p, part, self.encoding)
        if big:
            self._p.set(custom_size=True, width=1, height=1)
        self._p.set(align="left", bold=False if bold else None)

    def title(self, zh: str, en: str) -> None:
        """The receipt's kind: Chinese big and bold, English bold below, both centred."""
        self.center(zh, bold=True, big=display_width(zh) * 2 <= self.columns)
        self.center(en, bold=True)

    def pair(self, label: str, value: str, *, bold: bool = False) -> None:
        """``label`` flush left, ``value`` flush right; two lines when they do not fit one."""
        if bold:
            self._p.set(bold=True)
        for part in two_columns(label, value, self.columns):
            write_line(self._p, part, self.encoding)
        if bold:
            self._p.set(bold=False)

    def rule(self, char: str = "-") -> None:
        self._p.text(char * self.columns + "\n")

    def feed(self, lines: int = 1) -> None:
        self._p.text("\n" * lines)

    # ---- codes -------------------------------------------------------------------------
    def qr(self, data: str, *, bigger: bool = False) -> None:
        """A QR code rendered by the printer itself (GS ( k), centred; never a raster image.

        ``bigger`` adds 2 dots per module: a short code (a coupon) then scans from further.
        """
        size = QR_MODULE_DOTS[self.paper_mm] + (2 if bigger else 0)
        self._p.set(align="center")
        self._p.qr(data, ec=QR_ECLEVEL_M, size=size, native=True)
        self._p.text("\n")
        self._p.set(align="left")

    def barcode128(self, code: str) -> None:
        """A CODE128 barcode (GS k, code set B) with its text printed below, centred.

        ``_hw_barcode`` is the library's command layer for printer-drawn barcodes; the public
        ``barcode()`` would pick the same bytes but also print a line to stdout.
        """
        self._p._hw_barcode(
            "{B" + code,
            "CODE128",
            height=BARCODE_HEIGHT_DOTS,
            width=BARCODE_MODULE_DOTS,
            pos="BELOW",
            font="A",
            align_ct=True,
            function_type="B",
        )
        self._p.text("\n")
        self._p.set(align="left")

    # ---- end ---------------------------------------------------------------------------
    def finish(self) -> bytes:
        """Feed to the cutter and cut (GS V B 0), and return every byte of the receipt.

        ``GS V B`` feeds exactly to the blade before cutting (``cut()`` with feed adds six
        blank lines instead) and cuts partially: the receipt hangs until the member takes it.
        """
        self._p.cut(feed=False)
        return self._p.output
