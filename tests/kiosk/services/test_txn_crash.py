"""SIGKILL at every journal write of a flow, recovery, and the invariants (txn_crash.py).

CI runs every write of the redeem and offline flows plus a few random points; the whole
campaign (every flow, 1,000 random points) is ``bench/txn_crash.py`` and the slow test.
"""

from __future__ import annotations

import random

import pytest

from .txn_crash import FLOWS, run_campaign


@pytest.mark.parametrize("flow", ["redeem", "offline"])
def test_kill_before_and_after_every_journal_write(tmp_path, flow):
    result = run_campaign(tmp_path, (flow,), random_kills=3, rng=random.Random(11))
    writes = result.writes_per_flow[flow]
    assert writes >= 7  # NEW, HELD, DOOR_OPENING, DISPENSED, CAPTURED, (receipt), PRINTED, DONE
    assert result.runs == 1 + 2 * writes + 3
    assert result.killed >= 2 * writes  # each of those points really killed the child
    assert result.violations == []


@pytest.mark.slow
def test_full_campaign_every_flow_and_random_points(tmp_path):
    result = run_campaign(tmp_path, FLOWS, random_kills=200, rng=random.Random(5))
    assert result.violations == []
