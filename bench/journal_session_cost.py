"""What the journal costs one member session on a Pi's SD card: fsyncs and bytes, then time.

Each flow is a real member session, scan to receipt: the member's signed code identified by the
kiosk's `MemberIdentifier` (its replay guard journals the code's nonce; the member view goes to
the offline cache), then the transaction engine's redemption or spin against the real store
server on loopback, with the simulated locker and the virtual printer (the rig of the engine's
tests, tests/kiosk/services/rig.py), until the receipt is printed. During it every os.fsync and
os.fdatasync of the process is counted and timed, split into the journal's (its log, snapshot
and folder) and any other; the journal's own stats give its writes (sequence numbers), the
bytes appended to its log and the compactions (whose snapshot bytes are added).

    PYTHONPATH=. python bench/journal_session_cost.py [--runs 3] [--dir DIR]

The time on a Pi is the journal's fsyncs x a per-fsync latency on SD cards (SD_SOURCE below);
each fsync's frame fits in the 4 KiB page it writes, so the bytes add no writes of their own.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the rig lives under tests/

from kiosk.services.identify import MemberIdentifier
from kiosk.services.transactions import Member
from kiosk.storage.journal import COMPACT_MIN_BYTES
from kiosk.storage.journal_reader import LOG_NAME, SNAPSHOT_NAME
from kiosk.storage.server_keys import ServerKeyFile
from tests.kiosk.services.rig import (
    COUPON,
    EARBUDS,
    KIOSK,
    MUG,
    TOTE_PRIZE,
    KioskSide,
    ServerSide,
    pay_when_shown,
)

# Per-fsync latency on a Pi's SD card, from a public measurement: Jeff Geerling's microSD
# benchmarks on a Raspberry Pi 4 model B (iozone, 4K random write, direct I/O), table
# "Raspberry Pi 4 model B" of http://www.pidramble.com/wiki/benchmarks/microsd-cards :
# best card SanDisk Extreme Pro A1 32GB 4.70 MB/s, worst Toshiba C10 U1 16GB 0.22 MB/s.
# 4 KiB per write: 1,203 and 56 writes/s, i.e. 0.83 ms and 17.8 ms per synchronous write.
# An fsync of an appended file is the data block plus ext4's journal commit (the size
# changed), so we take one write on the best card to two writes on the worst: 0.83 - 35.5 ms.
SD_SOURCE = "http://www.pidramble.com/wiki/benchmarks/microsd-cards (Raspberry Pi 4 model B)"
SD_BEST_MS = 4 * 1024 / (4.70 * 1024 * 1024) * 1000  # one 4K write, SanDisk Extreme Pro A1
SD_WORST_MS = 2 * 4 * 1024 / (0.22 * 1024 * 1024) * 1000  # two 4K writes, Toshiba C10 U1
JOURNAL_FILES = (LOG_NAME, SNAPSHOT_NAME, SNAPSHOT_NAME + ".tmp")


@dataclass
class FsyncCounter:
    """Counts and times the process's fsyncs, split into the journal folder's and the rest."""

    journal_dir: Path
    journal: int = 0
    other: int = 0
    seconds: list[float] = field(default_factory=list)

    def is_journal(self, fd: int) -> bool:
        try:
            path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            return False
        return path == self.journal_dir or (
            path.parent == self.journal_dir and path.name in JOURNAL_FILES
        )

    def wrap(self, real: Callable[[int], None]) -> Callable[[int], None]:
        def counted(fd: int) -> None:
            started = time.perf_counter()
            real(fd)
            self.seconds.append(time.perf_counter() - started)
            if self.is_journal(fd):
                self.journal += 1
            else:
                self.other += 1

        return counted


@contextmanager
def counting_fsyncs(journal_dir: Path) -> Iterator[FsyncCounter]:
    """os.fsync and os.fdatasync counted while the block runs (every thread of the process)."""
    counter = FsyncCounter(journal_dir.resolve())
    real_fsync, real_fdatasync = os.fsync, os.fdatasync
    os.fsync, os.fdatasync = counter.wrap(real_fsync), counter.wrap(real_fdatasync)  # type: ignore[assignment]
    try:
        yield counter
    finally:
        os.fsync, os.fdatasync = real_fsync, real_fdatasync  # type: ignore[assignment]


@dataclass(frozen=True)
class SessionCost:
    flow: str
    writes: int
    fsyncs: int
    other_fsyncs: int
    bytes: int
    compactions: int
    fsync_s: list[float]
    session_s: float


def identified(kiosk: KioskSide, server: ServerSide, member_id: str) -> Member:
    """The member's phone code scanned and identified as the app does (session.py's _member)."""
    key = ServerKeyFile(kiosk.folder / "state" / "server_key.pub").load()
    identifier = MemberIdentifier(kiosk.client, kiosk.journal, key, now=time.time, cache_hours=24)
    who = identifier.identify(server.code(member_id))
    view = who.view
    return Member(
        view.member_id, view.name_masked, view.balance, session=who.session, code=who.code_text
    )


def redeem(item, member_id: str) -> Callable[[KioskSide, ServerSide], object]:
    def flow(kiosk: KioskSide, server: ServerSide) -> object:
        paid = pay_when_shown(server, kiosk)
        return kiosk.engine.redeem(identified(kiosk, server, member_id), item, paid.progress)

    return flow


def spin_for_a_gift(kiosk: KioskSide, server: ServerSide) -> object:
    server.only_prize(TOTE_PRIZE)  # the tote bag behind door 2
    return kiosk.engine.spin(identified(kiosk, server, "M0004"), kiosk.wheel())


FLOWS: dict[str, Callable[[KioskSide, ServerSide], object]] = {
    "redeem a gift (door)": redeem(MUG, "M0002"),
    "coupon": redeem(COUPON, "M0004"),
    "points + cash, paid on the phone": redeem(EARBUDS, "M0003"),
    "wheel spin winning a gift (door)": spin_for_a_gift,
}


def refill(server: ServerSide) -> None:
    """Stock every compartment again: the demo's has one pair of earbuds, three mugs."""
    with server.store.db.transaction() as conn:
        conn.execute("UPDATE compartments SET stock = MAX(stock, 5) WHERE kiosk_id = ?", (KIOSK,))


def measure(name: str, kiosk: KioskSide, server: ServerSide) -> SessionCost:
    refill(server)
    journal_dir = kiosk.folder / "state"
    before = kiosk.journal.stats()
    started = time.perf_counter()
    with counting_fsyncs(journal_dir) as fsyncs:
        result = FLOWS[name](kiosk, server)
    session_s = time.perf_counter() - started
    after = kiosk.journal.stats()
    assert getattr(result, "printed", False), f"{name}: no receipt printed ({result})"
    compactions = after.compactions - before.compactions
    snapshot = after.snapshot_bytes if compactions else 0
    for number in range(1, 7):
        kiosk.shut(number)  # the member takes the gift and shuts the door
    return SessionCost(
        name, after.seq - before.seq, fsyncs.journal, fsyncs.other,
        after.bytes_appended - before.bytes_appended + snapshot, compactions,
        fsyncs.seconds, session_s,
    )  # fmt: skip


def run(runs: int, folder: Path) -> list[SessionCost]:
    server = ServerSide(folder / "server", rate_limits={})
    kiosk = KioskSide(folder / "kiosk", server.url, server.enrollment_code(), codes=server.code)
    try:
        return [measure(name, kiosk, server) for _ in range(runs) for name in FLOWS]
    finally:
        kiosk.close()
        server.stop()


def span(values: list[float], fmt: str = "{:.0f}") -> str:
    low, high = min(values), max(values)
    return fmt.format(low) if low == high else f"{fmt.format(low)}-{fmt.format(high)}"


def report(costs: list[SessionCost]) -> None:
    ms = 1000
    here = [s for c in costs for s in c.fsync_s]
    here_ms = statistics.median(here) * ms
    print(f"Per member session, scan to receipt ({len(costs)} sessions; a range is min-max):\n")
    print(
        "| flow | journal writes | journal fsyncs | other fsyncs | bytes written | compactions "
        "| session ms here | fsync ms here | on a Pi's SD card, ms |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in FLOWS:
        rows = [c for c in costs if c.flow == name]
        fsyncs = [c.fsyncs for c in rows]
        print(
            f"| {name} | {span([c.writes for c in rows])} | {span(fsyncs)} "
            f"| {span([c.other_fsyncs for c in rows])} | {span([c.bytes for c in rows])} "
            f"| {span([c.compactions for c in rows])} "
            f"| {statistics.median(c.session_s for c in rows) * ms:.0f} "
            f"| {sum(s for c in rows for s in c.fsync_s) / len(rows) * ms:.1f} "
            f"| {min(fsyncs) * SD_BEST_MS:.0f}-{max(fsyncs) * SD_WORST_MS:.0f} |"
        )
    print(
        f"\nfsync here: median {here_ms:.2f} ms, p95 "
        f"{statistics.quantiles(here, n=20)[-1] * ms:.2f} ms over {len(here)} calls. "
        f"On a Pi: {SD_BEST_MS:.2f}-{SD_WORST_MS:.1f} ms per fsync "
        f"({SD_BEST_MS / here_ms:.0f}-{SD_WORST_MS / here_ms:.0f}x this machine)."
    )
    per_session = statistics.mean(c.bytes for c in costs)
    per_fsync = sum(c.bytes for c in costs) / max(1, sum(c.fsyncs for c in costs))
    print(
        f"Compactions: {sum(c.compactions for c in costs)} in these sessions; the log is compacted once it holds "
        f"max({COMPACT_MIN_BYTES // 1024} KiB, the snapshot), i.e. at most once every "
        f"{COMPACT_MIN_BYTES / per_session:.0f} sessions of {per_session / 1024:.1f} KiB, "
        "for 3 fsyncs and the snapshot's bytes (journal_bench's compaction column)."
    )
    print(
        "\n[SD] Pi = journal fsyncs x 0.83-35.5 ms per fsync. Source: Jeff Geerling's microSD "
        f"benchmarks, {SD_SOURCE}: iozone 4K random write, best card (SanDisk Extreme Pro A1 "
        "32GB) 4.70 MB/s = 0.83 ms per 4 KiB write, worst (Toshiba C10 U1 16GB) 0.22 MB/s = "
        "17.8 ms; an fsync of an appended file taken as one such write (best) to two (worst: "
        "the data block plus ext4's journal commit). The bytes add no writes of their own: "
        f"a step's frame ({per_fsync / 1024:.1f} KiB on average) fits in the 4 KiB page its "
        "fsync writes (a second page only when it straddles a boundary)."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="sessions per flow (at most 3)")
    parser.add_argument("--dir", default=None, help="where to make temp folders (not tmpfs)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="journal-session-", dir=args.dir) as folder:
        report(run(args.runs, Path(folder)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
