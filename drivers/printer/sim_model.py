"""What the virtual printer printed, between two cuts: lines of styled text, codes, images.

Plain records built by ``sim_parser`` and drawn by ``sim_render``; tests look at them too.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Span:
    """Characters printed in one style; ``cells`` is each one's columns at normal size."""

    text: str
    bold: bool
    width: int
    height: int
    cells: list[int]

    @property
    def columns(self) -> int:
        return sum(self.cells)


@dataclass
class TextLine:
    spans: list[Span]
    align: str

    @property
    def text(self) -> str:
        return "".join(span.text for span in self.spans)

    @property
    def columns(self) -> int:
        return sum(span.columns * span.width for span in self.spans)


@dataclass(frozen=True)
class QrCode:
    data: str
    module_dots: int
    ec: str
    align: str


@dataclass(frozen=True)
class Barcode:
    symbology: str
    data: str
    module_dots: int
    height_dots: int
    text_below: bool
    align: str


@dataclass(frozen=True)
class RasterImage:
    width_bytes: int
    height: int
    bits: bytes
    align: str


Block = TextLine | QrCode | Barcode | RasterImage


@dataclass
class ParsedReceipt:
    """Everything between two cuts."""

    blocks: list[Block] = field(default_factory=list)
    raw: bytes = b""
    cut: str = ""
    problems: list[str] = field(default_factory=list)


def code128_text(data: bytes) -> str:
    """The characters an ESC/POS CODE128 payload encodes ("{B" code set B, "{C" digit pairs)."""
    out, code_set, i = [], "B", 0
    while i < len(data):
        b = data[i]
        if b == ord("{") and i + 1 < len(data):
            nxt = chr(data[i + 1])
            i += 2
            if nxt in "ABC":
                code_set = nxt
            elif nxt == "{":
                out.append("{")
            continue  # FNC1-4 and shift carry no characters
        out.append(f"{b:02d}" if code_set == "C" else chr(b))
        i += 1
    return "".join(out)
