"""The heartbeat's pieces on their own: the health report, JSON cleaning and the clock skew.

The worker's use of them (against the real server too) is in test_worker.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.storage import Journal
from kiosk.storage.outbox import Outbox
from kiosk.sync.heartbeat import Heartbeat, clean_health, no_health, revoked_staff
from kiosk.sync.parse import BadResponse


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    with Journal.open(tmp_path / "kiosk") as j:
        yield Outbox(j)


def beat(outbox: Outbox, provider=no_health, errors: list[int] | None = None) -> Heartbeat:
    counted = errors if errors is not None else []
    return Heartbeat(provider, outbox, on_provider_error=lambda: counted.append(1))


def test_the_report_is_plain_finite_json_with_the_sync_state(outbox) -> None:
    class Odd:
        def __repr__(self) -> str:
            return "<odd>"

    outbox.add("fault", {"n": 1})
    health = {
        "temp": float("nan"),
        "up": float("inf"),
        "tags": {"b", "a"},
        7: "x\ud800",
        "o": Odd(),
    }
    report = beat(outbox, lambda: health).report(failures=2)
    assert report["temp"] is None and report["up"] is None and report["o"] == "<odd>"
    assert sorted(report["tags"]) == ["a", "b"] and report["7"] == "x?"
    assert report["sync"] == {"outbox": 1, "alerts": 0, "clock_skew_s": None, "failures": 2}
    json.dumps(report, allow_nan=False).encode()  # what the client will send


def test_a_report_the_provider_gives_its_own_sync_part_is_kept(outbox) -> None:
    report = beat(outbox, lambda: {"sync": "mine"}).report(failures=0)
    assert report == {"sync": "mine"}


def test_a_provider_that_raises_is_reported_and_counted(outbox) -> None:
    errors: list[int] = []

    def broken() -> dict:
        raise OSError("vcgencmd not found")

    report = beat(outbox, broken, errors).report(failures=0)
    assert report["health_error"] == "OSError: vcgencmd not found" and errors == [1]
    assert report["sync"]["outbox"] == 0


def test_deep_nesting_becomes_text() -> None:
    deep: list = []
    for _ in range(20):
        deep = [deep]
    cleaned = clean_health({"deep": deep})
    assert isinstance(json.dumps(cleaned), str) and "[[" in json.dumps(cleaned)


def test_the_skew_is_taken_at_the_midpoint_of_the_round_trip(outbox) -> None:
    hb = beat(outbox)
    skew = hb.read_skew({"server_time": "1970-01-01T00:01:40+00:00"}, 90.0, 94.0, 30.0)
    assert skew == hb.skew == 8.0  # the server said 100 at kiosk time 92
    assert hb.read_skew({"server_time": "1970-01-01T00:01:40"}, 100.0, 100.0, 30.0) == 0.0  # UTC
    assert hb.report(failures=0)["sync"]["clock_skew_s"] == 0.0


@pytest.mark.parametrize("answer", [None, [], {}, {"server_time": 5}, {"server_time": "soon"}])
def test_an_answer_without_a_usable_server_time_is_garbage(outbox, answer) -> None:
    hb = beat(outbox)
    with pytest.raises(BadResponse, match="server_time"):
        hb.read_skew(answer, 0.0, 0.0, 30.0)
    assert hb.skew is None


def test_a_large_skew_is_logged_once_and_its_end_once(outbox, caplog) -> None:
    hb = beat(outbox)
    ahead = {"server_time": "1970-01-01T00:00:00+00:00"}
    with caplog.at_level(logging.INFO, logger="kiosk.sync.heartbeat"):
        hb.read_skew(ahead, 60.0, 60.0, 30.0)
        hb.read_skew(ahead, 61.0, 61.0, 30.0)
        hb.read_skew(ahead, 10.0, 10.0, 30.0)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "60.0 s ahead of" in messages[0] and "NTP" in messages[0]
    assert "within 10.0 s" in messages[1]


def test_the_revoked_staff_list_is_read_and_an_older_server_has_none() -> None:
    listed = revoked_staff({"server_time": "x", "revoked_staff": {"version": "v", "ids": ["S1"]}})
    assert listed is not None and listed.staff_ids == frozenset({"S1"})
    assert revoked_staff({"server_time": "x"}) is None
    for bad in ({"version": "", "ids": []}, {"version": "v", "ids": ["S 1"]}, ["S1"]):
        with pytest.raises(BadResponse, match="revoked_staff"):
            revoked_staff({"revoked_staff": bad})


def test_a_report_is_cut_to_what_the_store_server_accepts(outbox) -> None:
    """The server refuses a heartbeat over its bounds whole (storeserver/event_payloads.py):
    the kiosk cuts long strings, lists and key counts, and replaces a report still too big."""
    from storeserver.models import HeartbeatRequest

    probes = {
        "log": "x" * 5000,
        "lines": list(range(500)),
        "many": {f"k{i}": i for i in range(200)},
        "k" * 100: 1,
        "huge": 2**70,
    }
    report = beat(outbox, lambda: probes).report(failures=0)
    HeartbeatRequest.model_validate({"health": report})  # would raise over the bounds
    assert len(report["log"]) == 1000 and len(report["lines"]) == 100
    big = {f"p{i}": "y" * 900 for i in range(40)}  # 36 KB: over the report limit
    report = beat(outbox, lambda: big).report(failures=0)
    HeartbeatRequest.model_validate({"health": report})
    assert "over" in report["health_error"] and report["sync"]["outbox"] == 0
