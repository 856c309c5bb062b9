"""``storeserver`` operations commands: ``backup`` (an online copy of the SQLite database).

The copy uses SQLite's online backup API a few pages at a time, so the server keeps serving
(in WAL mode writers are never blocked by it; between steps nothing is locked at all). A write
by another connection restarts the copy from its first page: after ``MAX_RESTARTS`` restarts
(a busy store) the copy is taken in one step instead, which in WAL mode still lets writers
go on. It is written to a temporary file beside ``--out`` (mode 0600: it holds every member's
points and the staff PIN hashes), checked with ``PRAGMA integrity_check``, and only then
renamed to ``--out``, so a name never holds a partial or broken backup.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_STEP_PAGES = 1024  # 4 MB of 4 KB pages per step
MAX_RESTARTS = 5


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int  # bytes
    pages: int
    seconds: float
    restarts: int  # copies restarted by a write from another connection


class _TooBusy(Exception):
    """Raised by the progress callback to stop a stepped copy that keeps restarting."""


def backup(
    source: Path, out: Path, *, force: bool = False, step_pages: int = DEFAULT_STEP_PAGES
) -> BackupResult:
    """Copy the database ``source`` to ``out`` online; FileExistsError when ``out`` exists
    (unless ``force``), FileNotFoundError when ``source`` does not, sqlite3.DatabaseError
    when the copy fails its integrity check (``out`` is then left as it was)."""
    if not source.is_file():
        raise FileNotFoundError(f"no database file {source}")
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists: choose another name or pass --force to replace it")
    started = time.monotonic()
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)  # mkstemp made it 0600
    tmp = Path(tmp_name)
    try:
        pages, restarts = _copy(source, tmp, step_pages)
        _check(tmp)
        _durable_rename(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return BackupResult(out, out.stat().st_size, pages, time.monotonic() - started, restarts)


def _copy(source: Path, dest_path: Path, step_pages: int) -> tuple[int, int]:
    """The online copy; its page count and how often it restarted."""
    src = sqlite3.connect(f"file:{source}?mode=rw", uri=True)  # never creates a missing file
    dest = sqlite3.connect(dest_path)
    try:
        src.execute("PRAGMA busy_timeout = 10000")
        state = {"remaining": None, "restarts": 0, "total": 0}

        def progress(_status: int, remaining: int, total: int) -> None:
            if state["remaining"] is not None and remaining > state["remaining"]:
                state["restarts"] += 1  # a write from another connection: copy again
                if state["restarts"] > MAX_RESTARTS:
                    raise _TooBusy
            state["remaining"], state["total"] = remaining, total

        try:
            src.backup(dest, pages=step_pages, progress=progress)
        except _TooBusy:  # the callback's exception aborts the stepped copy
            log.info("backup restarted %d times by writes: copying in one step", MAX_RESTARTS)
            src.backup(dest, pages=-1)
        dest.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal
        pages = dest.execute("PRAGMA page_count").fetchone()[0]
        return pages, state["restarts"]
    finally:
        dest.close()
        src.close()


def _check(path: Path) -> None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()
    if result != ["ok"]:
        raise sqlite3.DatabaseError(f"the backup failed its integrity check: {result[:5]}")


def _durable_rename(tmp: Path, out: Path) -> None:
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, out)
    dir_fd = os.open(out.parent, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some file systems cannot sync a directory
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def cmd_backup(args: argparse.Namespace) -> int:
    try:
        result = backup(Path(args.db), args.out, force=args.force, step_pages=args.step_pages)
    except (OSError, sqlite3.Error) as exc:
        sys.exit(f"storeserver: backup failed: {exc}")
    print(
        f"backup of {args.db} written to {result.path}: {result.size} bytes "
        f"({result.pages} pages) in {result.seconds:.2f} s, integrity ok"
        + (f", restarted {result.restarts} times by writes" if result.restarts else "")
    )
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0")
    return value


def add_commands(sub: argparse._SubParsersAction, default_db: str) -> None:
    """Register the operations commands on ``storeserver``'s subcommands."""
    help_text = (
        "copy the SQLite database online (the server may keep running) into a new file, "
        "mode 0600, checked with PRAGMA integrity_check"
    )
    p = sub.add_parser("backup", help=help_text, description=help_text)
    p.add_argument("--db", default=default_db, help=f"SQLite database file (default {default_db})")
    p.add_argument("--out", type=Path, required=True, help="the backup file to write")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument(
        "--step-pages",
        type=_positive,
        default=DEFAULT_STEP_PAGES,
        help=f"pages copied per step (default {DEFAULT_STEP_PAGES})",
    )
    p.set_defaults(func=cmd_backup)
