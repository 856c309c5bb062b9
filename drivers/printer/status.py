"""Real-time status (DLE EOT n) of an ESC/POS printer: the queries and what the answers mean.

Each answer is one byte whose bits 1 and 4 are always set and bits 0 and 7 clear (so it is
never XON 0x11 or XOFF 0x13); anything else means the line is garbled, usually a baud mismatch.

    n=1 printer:       bit 3  offline
    n=2 offline cause: bit 2  cover open      bit 3  paper fed by the button
                       bit 5  stopped: paper end                bit 6  error (cutter, head)
    n=4 roll sensor:   bits 2,3  paper near end                 bits 5,6  paper out
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.ports import PaperState, PrinterStatus

DLE_EOT = b"\x10\x04"
PRINTER, OFFLINE_CAUSE, ROLL_SENSOR = 1, 2, 4
QUERIES = (PRINTER, OFFLINE_CAUSE, ROLL_SENSOR)

OFFLINE = 0x08
COVER_OPEN = 0x04
PAPER_END_STOP = 0x20
ERROR = 0x40
NEAR_END = 0x0C
PAPER_OUT = 0x60


def query(n: int) -> bytes:
    """The three bytes asking for status ``n`` (1, 2 or 4)."""
    return DLE_EOT + bytes([n])


def is_status_byte(value: int) -> bool:
    """Whether ``value`` has the fixed bits of every DLE EOT answer."""
    return value & 0x93 == 0x12


@dataclass(frozen=True)
class RawStatus:
    """The answers to DLE EOT 1, 2 and 4, as received."""

    printer: int
    offline_cause: int
    roll_sensor: int


def interpret(raw: RawStatus, port: str, paper_mm: int) -> PrinterStatus:
    """What a technician needs to know from the three answers, worst problem first."""
    paper_out = bool(raw.roll_sensor & PAPER_OUT or raw.offline_cause & PAPER_END_STOP)
    near_end = bool(raw.roll_sensor & NEAR_END)
    cover_open = bool(raw.offline_cause & COVER_OPEN)
    online = not raw.printer & OFFLINE
    paper = PaperState.OUT if paper_out else PaperState.NEAR_END if near_end else PaperState.OK
    where = f"printer on {port}"
    if cover_open:
        detail = f"{where} reports its cover open: close the paper cover"
    elif paper_out:
        detail = f"{where} reports paper out: load a {paper_mm} mm roll"
    elif raw.offline_cause & ERROR:
        detail = (
            f"{where} reports an error (cutter jam or print head too hot): clear the paper "
            "path, then switch the printer off and on"
        )
    elif not online:
        detail = (
            f"{where} is offline: check its error light, press the feed button once, "
            "or switch it off and on"
        )
    elif near_end:
        detail = f"{where} reports paper near end: load a new {paper_mm} mm roll soon"
    else:
        detail = "ok"
    return PrinterStatus(online=online, paper=paper, cover_open=cover_open, detail=detail)
