"""The receipt printer: ESC/POS templates, the serial adapter and a virtual printer.

    escpos_text     the one place that emits Chinese (FS & + GB18030/GBK + FS .), column widths
    builder         a receipt under construction on python-escpos's Dummy printer
    templates       render_receipt(receipt, paper_mm, encoding) -> bytes, one template per kind
    status          DLE EOT queries and what their answers mean
    serial_printer  SerialReceiptPrinter: kiosk.ports.ReceiptPrinter over pyserial
    sim_printer     VirtualPrinter: a printer on a pty; sim_parser reads its byte stream into
                    sim_model records, sim_render draws them as text and PNG
    samples         one fixed receipt of each kind

``make_printer`` is what the composition root calls: for ``kind = "sim"`` the same serial
adapter talks to a VirtualPrinter, so the demo and the tests exercise the real code path.
"""

from __future__ import annotations

import logging
import tempfile
from typing import TYPE_CHECKING

from kiosk.config import PrinterSection

from .serial_printer import SerialReceiptPrinter
from .templates import render_receipt

if TYPE_CHECKING:
    from .sim_printer import VirtualPrinter

__all__ = ["SerialReceiptPrinter", "make_printer", "render_receipt"]

log = logging.getLogger(__name__)


def make_printer(cfg: PrinterSection, sim: VirtualPrinter | None = None) -> SerialReceiptPrinter:
    """The printer ``[printer]`` describes.

    For ``kind = "serial"`` it opens ``cfg.port``. For ``kind = "sim"`` it points the serial
    adapter at ``sim`` (started if needed; the caller keeps owning it) or, without one, at a
    new VirtualPrinter writing its receipts to a temporary folder, stopped by ``close()``.
    """
    if cfg.kind == "serial":
        if sim is not None:
            raise ValueError('a VirtualPrinter was given but [printer] kind is "serial"')
        return SerialReceiptPrinter.from_config(cfg)
    if cfg.kind != "sim":
        raise ValueError(f"unknown [printer] kind {cfg.kind!r}")
    from .sim_printer import VirtualPrinter  # pillow, numpy and segno only when simulating

    owned = sim is None
    if sim is None:
        out_dir = tempfile.mkdtemp(prefix="kiosk-printer-")
        sim = VirtualPrinter(
            out_dir,
            paper_mm=cfg.paper_mm,
            encoding=cfg.encoding,
            flow_control=cfg.flow_control,
            baudrate=cfg.baudrate,
        )
        log.info("simulated printer: receipts go to %s", out_dir)
    sim.start()
    return SerialReceiptPrinter.from_config(
        cfg, port=sim.port, on_close=sim.stop if owned else None
    )
