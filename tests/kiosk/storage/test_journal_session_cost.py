"""The session-cost bench's fsync counter (bench/journal_session_cost.py): what it counts as the
journal's must be exactly the journal's fsyncs, so the Pi estimate multiplies the right number."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from kiosk.storage import Journal

BENCH = Path(__file__).resolve().parents[3] / "bench" / "journal_session_cost.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("journal_session_cost", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_one_journal_fsync_per_step_and_none_for_other_files(tmp_path):
    bench = load_bench()
    state = tmp_path / "state"
    with Journal.open(state) as journal:
        with bench.counting_fsyncs(state) as counter:
            for n in range(5):
                journal.put("txn", f"t{n}", {"n": n})
            journal.delete("txn", "t0")
            other = tmp_path / "token"  # a file beside the journal's, as the kiosk's token
            with open(state / "token", "wb") as f, open(other, "wb") as g:
                f.write(b"x")
                os.fsync(f.fileno())
                os.fdatasync(g.fileno())
        assert (counter.journal, counter.other) == (6, 2)
        assert len(counter.seconds) == 8
    assert os.fsync.__name__ == "fsync" and os.fdatasync.__name__ == "fdatasync"  # restored


def test_a_compaction_counts_the_snapshot_and_folder_fsyncs(tmp_path):
    bench = load_bench()
    state = tmp_path / "state"
    with Journal.open(state) as journal:
        journal.put("txn", "t1", {"n": 1})
        with bench.counting_fsyncs(state) as counter:
            journal.compact()
        # the snapshot file, the folder (its rename) and the emptied log
        assert (counter.journal, counter.other) == (3, 0)
