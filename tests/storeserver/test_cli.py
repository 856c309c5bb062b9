"""The storeserver command line, run as a real process where it serves."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import requests

from storeserver import codes
from storeserver.cli import main


def test_seed_demo_prints_the_members(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    assert main(["seed-demo", "--db", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["M0001", "M0002", "M0003", "M0004", "M0005"]
    assert {line.split("\t")[1] for line in lines} == {"basic", "silver", "gold", "diamond"}
    # seeding again leaves the store as it is
    assert main(["seed-demo", "--db", db]) == 0
    assert capsys.readouterr().out.splitlines() == lines


def test_member_code_and_enroll_code(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    main(["seed-demo", "--db", db])
    capsys.readouterr()
    assert main(["member-code", "--db", db, "M0002", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    parsed, _, _ = codes.parse(out["code"])
    assert parsed.subject == "M0002" and parsed.expires - parsed.issued == 60
    assert main(["enroll-code", "--db", db]) == 0
    assert len(capsys.readouterr().out.strip()) == 14  # XXXX-XXXX-XXXX


def test_member_code_for_unknown_member_fails_clearly(tmp_path):
    db = str(tmp_path / "s.db")
    main(["seed-demo", "--db", db])
    try:
        main(["member-code", "--db", db, "NOBODY"])
    except SystemExit as exc:
        assert "no member with id 'NOBODY'" in str(exc.code)
    else:
        raise AssertionError("expected an exit")


def test_serve_answers_and_stops_on_sigterm(tmp_path):
    db = str(tmp_path / "s.db")
    main(["seed-demo", "--db", db])
    proc = subprocess.Popen(
        [sys.executable, "-m", "storeserver.cli", "serve", "--db", db, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()
        assert first.startswith("store server on http://127.0.0.1:"), first
        url = first.split()[3]
        deadline = time.monotonic() + 10
        while True:
            try:
                health = requests.get(url + "/v1/health", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "server did not answer"
                time.sleep(0.05)
        assert health.json()["status"] == "ok"
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal (systemd counts that as clean)
        assert proc.wait(timeout=10) in (0, -signal.SIGTERM)
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_takes_the_member_session_and_offline_caps(tmp_path):
    from storeserver.cli import _store, build_parser

    args = build_parser().parse_args(
        ["serve", "--db", str(tmp_path / "s.db"), "--member-session", "300",
         "--offline-member-points", "400", "--offline-kiosk-points", "2000",
         "--offline-max-hours", "4"]
    )  # fmt: skip
    store = _store(args)
    try:
        assert store.settings.member_session_s == 300
        assert store.settings.offline_limits() == {
            "per_member_daily_points": 400, "per_kiosk_daily_points": 2000, "max_offline_hours": 4,
        }  # fmt: skip
    finally:
        store.close()
