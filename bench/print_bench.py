"""Receipt printing cost: bytes per receipt and time on the serial line, as a markdown table.

For every template at 58 and 80 mm: bytes, and the line time at 9600, 19200 and 115200 baud
(bytes x 10 bits / baud: 8N1 is 10 bits a byte). Then the wheel-proof QR code sent natively
(GS ( k) against the same code as a raster image (GS v 0), and a sanity check of the formula:
one receipt printed through the real serial adapter into a VirtualPrinter that reads no faster
than the baud rate allows (the pty itself has no baud rate), status queries included.

    PYTHONPATH=. python bench/print_bench.py [--measure-baud 19200] [--repeat 3]

Goal (issue): the redemption receipt <= 1.5 KB and under 1 s at 19200 baud.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time

from escpos.constants import QR_ECLEVEL_M
from escpos.printer import Dummy

from drivers.printer.builder import QR_MODULE_DOTS
from drivers.printer.samples import sample_receipts
from drivers.printer.serial_printer import SerialReceiptPrinter
from drivers.printer.sim_printer import VirtualPrinter
from drivers.printer.templates import render_receipt

BAUDS = (9600, 19200, 115200)
GOAL_BYTES, GOAL_S, GOAL_BAUD = 1536, 1.0, 19200


def line_s(n_bytes: int, baud: int) -> float:
    return n_bytes * 10 / baud


def qr_bytes(payload: str, paper_mm: int, native: bool) -> int:
    p = Dummy()
    with contextlib.redirect_stdout(io.StringIO()):  # the image path prints notes
        p.qr(payload, ec=QR_ECLEVEL_M, size=QR_MODULE_DOTS[paper_mm], native=native)
    return len(p.output)


def measure(baud: int, repeat: int) -> tuple[int, float, float]:
    """Bytes on the wire and the median and best time of printing the redemption receipt."""
    receipt = sample_receipts()["redemption"]
    times = []
    with tempfile.TemporaryDirectory() as out, VirtualPrinter(out, baudrate=baud, pace=True) as sim:
        printer = SerialReceiptPrinter(sim.port, baudrate=baud)
        printer.status()  # open the port outside the timing
        start_bytes = sim.received
        for _ in range(repeat):
            t0 = time.perf_counter()
            printer.print_receipt(receipt)
            times.append(time.perf_counter() - t0)
        printer.close()
        wire = (sim.received - start_bytes) // repeat
    return wire, statistics.median(times), min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure-baud", type=int, default=19200, choices=BAUDS)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    samples = sample_receipts()

    print(
        "| receipt | paper | bytes | render ms | " + " | ".join(f"{b} baud" for b in BAUDS) + " |"
    )
    print("|---|---|---:|---:|" + "---:|" * len(BAUDS))
    for kind, receipt in samples.items():
        for mm in (58, 80):
            t0 = time.perf_counter()
            data = render_receipt(receipt, paper_mm=mm)
            render_ms = (time.perf_counter() - t0) * 1000
            cells = " | ".join(f"{line_s(len(data), b):.2f} s" for b in BAUDS)
            print(f"| {kind} | {mm} mm | {len(data)} | {render_ms:.1f} | {cells} |")

    proof = samples["wheel"].proof_payload()  # type: ignore[attr-defined]
    print(f"\nWheel-proof QR ({len(proof)} characters), native GS ( k against a raster image:\n")
    print("| QR as | paper | bytes | " + " | ".join(f"{b} baud" for b in BAUDS) + " |")
    print("|---|---|---:|" + "---:|" * len(BAUDS))
    for native in (True, False):
        for mm in (58, 80):
            n = qr_bytes(proof, mm, native)
            cells = " | ".join(f"{line_s(n, b):.2f} s" for b in BAUDS)
            name = "native (GS ( k)" if native else "raster (GS v 0)"
            print(f"| {name} | {mm} mm | {n} | {cells} |")

    wire, median_s, best_s = measure(args.measure_baud, args.repeat)
    print(
        f"\nMeasured through the pty at {args.measure_baud} baud (paced virtual printer, "
        f"redemption 58 mm, {wire} bytes on the wire incl. 18 status bytes): median "
        f"{median_s:.3f} s, best {best_s:.3f} s; formula {line_s(wire, args.measure_baud):.3f} s."
    )
    size = len(render_receipt(samples["redemption"], paper_mm=58))
    size80 = len(render_receipt(samples["redemption"], paper_mm=80))
    worst = max(size, size80)
    ok = worst <= GOAL_BYTES and line_s(worst, GOAL_BAUD) < GOAL_S
    print(
        f"\nGoal: redemption <= {GOAL_BYTES} bytes and < {GOAL_S:g} s at {GOAL_BAUD} baud: "
        f"{size} / {size80} bytes, {line_s(worst, GOAL_BAUD):.2f} s -> {'met' if ok else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
