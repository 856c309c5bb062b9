"""The storeserver command line, run as a real process where it serves."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
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
    assert main(["enroll-code", "--db", db, "--kiosk", "kiosk-07"]) == 0
    assert len(capsys.readouterr().out.strip()) == 14  # XXXX-XXXX-XXXX


def test_enroll_code_names_its_kiosk_and_replacing_one_takes_replace(tmp_path, capsys):
    from storeserver import kiosks
    from storeserver.store import Store

    db = str(tmp_path / "s.db")
    assert main(["enroll-code", "--db", db, "--kiosk", "kiosk-07"]) == 0
    code = capsys.readouterr().out.strip()
    store = Store(db)
    try:
        with store.db.transaction() as conn:
            kiosks.enroll(conn, store.clock, code, "kiosk-07")
    finally:
        store.close()
    with pytest.raises(SystemExit) as refused:
        main(["enroll-code", "--db", db, "--kiosk", "kiosk-07"])
    assert "kiosk kiosk-07 is already enrolled" in str(refused.value.code)
    assert "storeserver enroll-code --kiosk kiosk-07 --replace" in str(refused.value.code)
    assert main(["enroll-code", "--db", db, "--kiosk", "kiosk-07", "--replace"]) == 0
    out = capsys.readouterr()
    assert len(out.out.strip()) == 14 and "its current token stops working" in out.err
    with pytest.raises(SystemExit):
        main(["enroll-code", "--db", db])  # --kiosk is required


def test_member_code_for_unknown_member_fails_clearly(tmp_path):
    db = str(tmp_path / "s.db")
    main(["seed-demo", "--db", db])
    try:
        main(["member-code", "--db", db, "NOBODY"])
    except SystemExit as exc:
        assert "no member with id 'NOBODY'" in str(exc.code)
    else:
        raise AssertionError("expected an exit")


def serve(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``storeserver serve`` that is expected to refuse to start (the timeout is a safety net:
    a server that starts instead would serve forever)."""
    return subprocess.run(
        [sys.executable, "-m", "storeserver.cli", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_serve_without_a_payment_provider_refuses_to_start(tmp_path):
    done = serve("--db", str(tmp_path / "s.db"))
    assert done.returncode == 2 and done.stdout == ""
    assert "no payment provider is configured" in done.stderr
    assert '[payments] provider = "none"' in done.stderr and "--demo" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_refuses_a_bad_config_file_naming_it(tmp_path):
    config = tmp_path / "server.toml"
    config.write_text('[payments]\nprovider = "paypal"\n')
    done = serve("--db", str(tmp_path / "s.db"), "--config", str(config))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f'{config}: payments.provider = "paypal": must be one of "simulated", "none"' in (
        done.stderr
    )
    config.write_text('[payments]\nprovider = "none"\n')
    done = serve("--db", str(tmp_path / "s.db"), "--config", str(config), "--demo")
    assert done.returncode == 2 and "drop --demo or that setting" in done.stderr
    done = serve("--db", str(tmp_path / "s.db"), "--demo", "--public-url", "store.example.com")
    assert done.returncode == 2 and '--public-url = "store.example.com"' in done.stderr


def test_serve_answers_and_stops_on_sigterm(tmp_path):
    db = str(tmp_path / "s.db")
    main(["seed-demo", "--db", db])
    proc = subprocess.Popen(
        [sys.executable, "-m", "storeserver.cli", "serve", "--db", db, "--port", "0", "--demo"],
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
        err = proc.stderr.read()
        assert "Traceback" not in err
        # the demo's simulated payments are said loudly, first thing
        assert err.startswith("WARNING: simulated payments: anyone can mark a payment paid")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_takes_the_member_session_and_offline_caps(tmp_path):
    from storeserver.cli import _store, build_parser, serve_config

    args = build_parser().parse_args(
        ["serve", "--db", str(tmp_path / "s.db"), "--demo", "--member-session", "300",
         "--offline-member-points", "400", "--offline-kiosk-points", "2000",
         "--offline-max-hours", "4"]
    )  # fmt: skip
    store = _store(args, settings=serve_config(args).settings)  # as cmd_serve opens it
    try:
        assert store.settings.member_session_s == 300
        assert store.settings.offline_limits() == {
            "per_member_daily_points": 400, "per_kiosk_daily_points": 2000, "max_offline_hours": 4,
        }  # fmt: skip
    finally:
        store.close()


def test_offline_flags_win_over_the_config_file(tmp_path):
    from storeserver.cli import build_parser, serve_config

    config = tmp_path / "storeserver.toml"
    config.write_text(
        '[payments]\nprovider = "none"\n\n[offline]\nmax_hours = 8\nmember_daily_points = 300\n'
    )
    db = str(tmp_path / "s.db")
    args = build_parser().parse_args(
        ["serve", "--db", db, "--config", str(config), "--offline-max-hours", "2"]
    )
    settings = serve_config(args).settings
    assert (settings.offline_max_hours, settings.offline_member_daily_points) == (2, 300)
    plain = serve_config(build_parser().parse_args(["serve", "--db", db, "--demo"])).settings
    assert plain.offline_max_hours == 8  # neither given: the default
