"""Tests for kiosk.config: the example loads, defaults apply, bad values are named precisely."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from kiosk import config
from kiosk.config import (
    DEFAULT_CONFIG_PATH,
    Compartment,
    KioskConfig,
    load_config,
    parse_config,
)
from kiosk.errors import ConfigError

EXAMPLE = Path(config.__file__).parent / "kiosk.example.toml"
SOURCE = "kiosk.toml"
PIN_A, PIN_B = "sha256/" + "A" * 43 + "=", "sha256/" + "b+/9" * 10 + "xyz="


def minimal() -> dict[str, Any]:
    """The smallest valid configuration: only the required keys."""
    return {
        "kiosk": {"id": "k1"},
        "server": {"url": "https://store.example.com"},
        "locker": {"compartments": [{"number": 1, "relay_pin": 5, "sensor_pin": 6}]},
    }


def with_value(section: str, key: str, value: Any) -> dict[str, Any]:
    data = minimal()
    data.setdefault(section, {})[key] = value
    return data


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, SOURCE)
    return str(info.value)


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "kiosk.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# --- good configurations ---------------------------------------------------------------------


def test_example_file_loads_with_simulators() -> None:
    cfg = load_config(EXAMPLE)
    assert isinstance(cfg, KioskConfig)
    assert cfg.source == str(EXAMPLE)
    assert cfg.server.url == "http://127.0.0.1:8080"
    assert (cfg.scanner.kind, cfg.printer.kind, cfg.locker.kind) == ("sim", "sim", "sim")
    assert [c.number for c in cfg.locker.compartments] == [1, 2, 3]
    assert cfg.kiosk.store_name_zh == "示范门店"


def test_the_wheel_is_the_configured_one_or_lucky() -> None:
    assert parse_config(minimal(), SOURCE).wheel.id == "LUCKY"
    assert parse_config(with_value("wheel", "id", "SPRING_2027"), SOURCE).wheel.id == "SPRING_2027"


def test_defaults_apply_to_missing_optional_keys() -> None:
    cfg = parse_config(minimal(), SOURCE)
    assert cfg.kiosk.id == "k1"
    assert cfg.kiosk.language == "zh"
    assert cfg.kiosk.state_dir == Path("/var/lib/kiosk")
    assert cfg.kiosk.safe_mode_on_corrupt_journal is True
    assert cfg.server.token_file == Path("/var/lib/kiosk/token")
    assert cfg.server.public_key_file == Path("/var/lib/kiosk/server_key.pub")
    assert cfg.server.ca_bundle is None
    assert cfg.server.pin_sha256 is None
    assert (cfg.server.connect_timeout_s, cfg.server.read_timeout_s) == (3.0, 10.0)
    scanner = cfg.scanner
    assert (scanner.kind, scanner.device, scanner.width, scanner.height) == ("camera", 0, 640, 480)
    assert (scanner.fps, scanner.decoder, scanner.repeat_ignore_s) == (15, "auto", 3.0)
    assert scanner.sim_source is None
    printer = cfg.printer
    assert (printer.kind, printer.port, printer.baudrate) == ("serial", "/dev/ttyUSB0", 19200)
    assert (printer.flow_control, printer.paper_mm, printer.encoding) == ("none", 58, "gb18030")
    assert printer.write_timeout_s == 5.0
    locker = cfg.locker
    assert (locker.kind, locker.relay_active_high, locker.pulse_ms) == ("gpio", False, 300)
    assert (locker.door_open_timeout_s, locker.door_close_timeout_s) == (5.0, 120.0)
    assert locker.compartments == (Compartment(number=1, relay_pin=5, sensor_pin=6),)
    offline = cfg.offline
    assert (offline.per_member_daily_points, offline.per_kiosk_daily_points) == (500, 3000)
    assert (offline.member_cache_hours, offline.max_offline_hours) == (24, 8)
    assert cfg.ui.idle_logout_s == 30
    assert cfg.ui.font_path == Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
    assert cfg.ui.fullscreen is True
    assert cfg.log.level == "INFO"
    assert (cfg.alarm.buzzer_pin, cfg.alarm.active_high) == (None, True)  # no buzzer: silent


def test_default_path_is_used_when_none_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Path("/etc/kiosk/kiosk.toml") == DEFAULT_CONFIG_PATH
    path = write(tmp_path, EXAMPLE.read_text(encoding="utf-8"))
    monkeypatch.setattr(config, "DEFAULT_CONFIG_PATH", path)
    assert load_config().source == str(path)


def test_server_files_resolve_relative_to_state_dir() -> None:
    data = minimal()
    data["kiosk"]["state_dir"] = "/srv/kiosk"
    data["server"].update(token_file="secrets/token", public_key_file="/etc/kiosk/server.pub")
    cfg = parse_config(data, SOURCE)
    assert cfg.server.token_file == Path("/srv/kiosk/secrets/token")
    assert cfg.server.public_key_file == Path("/etc/kiosk/server.pub")


def test_two_key_pins_are_read_in_order() -> None:
    data = minimal()
    data["server"]["pins"] = [PIN_A, PIN_B]
    assert parse_config(data, SOURCE).server.pins == (PIN_A, PIN_B)
    assert parse_config(minimal(), SOURCE).server.pins == ()


def test_the_old_certificate_pin_next_to_pins_is_an_error_saying_remove_it() -> None:
    data = minimal()
    data["server"].update(pins=[PIN_A], pin_sha256="ab" * 32)
    message = error_of(data)
    assert "server.pin_sha256" in message and "remove it, server.pins replaces it" in message


def test_values_are_converted() -> None:
    data = minimal()
    data["server"].update(url="https://store.example.com/", pin_sha256="AB" * 32)
    data["server"]["connect_timeout_s"] = 2
    data["scanner"] = {"device": "/dev/video2"}
    cfg = parse_config(data, SOURCE)
    assert cfg.server.url == "https://store.example.com"
    assert cfg.server.pin_sha256 == "ab" * 32
    assert cfg.server.connect_timeout_s == 2.0
    assert isinstance(cfg.server.connect_timeout_s, float)
    assert cfg.scanner.device == "/dev/video2"


BY_ID = "/dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_8A1B2C3D-video-index0"


@pytest.mark.parametrize(
    ("scanner", "kind", "device"),
    [
        ({"device": BY_ID}, "camera", BY_ID),  # a stable USB camera name
        ({"kind": "picamera2"}, "picamera2", 0),  # the first CSI camera
        ({"kind": "picamera2", "device": 1}, "picamera2", 1),
    ],
)
def test_scanner_kinds_and_devices(scanner: dict, kind: str, device: int | str) -> None:
    data = minimal()
    data["scanner"] = scanner
    cfg = parse_config(data, SOURCE)
    assert (cfg.scanner.kind, cfg.scanner.device) == (kind, device)


def test_a_picamera2_camera_is_a_number_not_a_path() -> None:
    data = minimal()
    data["scanner"] = {"kind": "picamera2", "device": "/dev/video0"}
    message = error_of(data)
    assert message.startswith(f"{SOURCE}: scanner.device = '/dev/video0': a picamera2 camera")
    assert "rpicam-hello --list-cameras" in message


def test_compartments_are_sorted_by_number() -> None:
    data = minimal()
    data["locker"]["compartments"] = [
        {"number": 7, "relay_pin": 20, "sensor_pin": 21},
        {"number": 2, "relay_pin": 5, "sensor_pin": 6},
    ]
    assert [c.number for c in parse_config(data, SOURCE).locker.compartments] == [2, 7]


def test_config_is_frozen() -> None:
    cfg = parse_config(minimal(), SOURCE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.printer.baudrate = 9600  # type: ignore[misc]


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost", "http://[::1]:80"])
def test_plain_http_is_allowed_for_loopback(url: str) -> None:
    assert parse_config(with_value("server", "url", url), SOURCE).server.url == url


# --- bad values: the message names file, key, value and what is allowed -----------------------

BAD_VALUES = [
    (
        "kiosk",
        "id",
        "Kiosk_1",
        "must be 2-32 characters of a-z, 0-9 and '-', not starting with '-'",
    ),
    ("kiosk", "id", "-k1", "must be 2-32 characters of a-z, 0-9 and '-', not starting with '-'"),
    ("kiosk", "language", "de", 'must be one of "zh", "en"'),
    ("kiosk", "timezone", "Mars/Olympus", "must be an IANA time zone such as Asia/Shanghai"),
    ("kiosk", "timezone", "../etc/passwd", "must be an IANA time zone such as Asia/Shanghai"),
    ("kiosk", "state_dir", "var/lib/kiosk", "must be an absolute path"),
    ("kiosk", "store_name_en", "", "must be a non-empty string of at most 40 characters"),
    ("kiosk", "safe_mode_on_corrupt_journal", "yes", "must be true or false"),
    ("server", "url", "ftp://store.example.com", "must be an http:// or https:// URL"),
    ("server", "url", "https://", "must be an http:// or https:// URL"),
    ("server", "url", "https://store.example.com:99999", "must be an http:// or https:// URL"),
    ("server", "pin_sha256", "abc", "must be 64 hex digits"),
    ("server", "pins", "sha256/" + "A" * 43 + "=", "must be a list of 1 to 2 different pins"),
    ("server", "pins", [], "must be a list of 1 to 2 different pins"),
    ("server", "pins", [PIN_A, PIN_B, "sha256/" + "C" * 43 + "="], "must be a list of 1 to 2"),
    ("server", "pins", [PIN_A, PIN_A], "must be a list of 1 to 2 different pins"),
    ("server", "pins", ["AB" * 32], "a pin names the server's public key, not the certificate"),
    ("server", "connect_timeout_s", 0, "must be a number from 0.1 to 30"),
    ("server", "read_timeout_s", 61, "must be a number from 0.1 to 60"),
    ("server", "ca_bundle", "ca.pem", "must be an absolute path"),
    ("scanner", "kind", "usb", 'must be one of "camera", "picamera2", "sim"'),
    ("scanner", "fps", 0, "must be a whole number from 1 to 60"),
    ("scanner", "fps", 15.0, "must be a whole number from 1 to 60"),
    ("scanner", "decoder", "zbar", 'must be one of "auto", "pyzbar", "zxing"'),
    ("scanner", "device", "video0", "must be a camera index from 0 to 63 or a device path"),
    ("scanner", "device", -1, "must be a camera index from 0 to 63 or a device path"),
    ("printer", "baudrate", 1234, "must be one of 9600, 19200, 38400, 57600, 115200"),
    ("printer", "baudrate", "19200", "must be one of 9600, 19200, 38400, 57600, 115200"),
    ("printer", "flow_control", "hardware", 'must be one of "none", "rtscts", "xonxoff"'),
    ("printer", "paper_mm", 57, "must be one of 58, 80"),
    ("printer", "paper_mm", 58.0, "must be one of 58, 80"),  # 58.0 == 58 in Python
    ("printer", "encoding", "utf-8", 'must be one of "gb18030", "gbk"'),
    ("printer", "port", "COM3", "must be a device path such as /dev/ttyUSB0"),
    ("locker", "kind", "relay", 'must be one of "gpio", "sim"'),
    ("locker", "pulse_ms", 49, "must be a whole number from 50 to 2000"),
    ("locker", "pulse_ms", 2001, "must be a whole number from 50 to 2000"),
    ("offline", "per_member_daily_points", -1, "must be a whole number from 0 to 1000000"),
    ("offline", "max_offline_hours", 100, "must be a whole number from 0 to 72"),
    ("ui", "idle_logout_s", 5, "must be a whole number from 10 to 300"),
    ("ui", "font_path", "", "must be an absolute path"),
    ("log", "level", "debug", 'must be one of "DEBUG", "INFO", "WARNING", "ERROR"'),
    ("alarm", "buzzer_pin", 28, "must be a whole number from 2 to 27"),
    ("alarm", "buzzer_pin", True, "must be a whole number from 2 to 27"),
    ("alarm", "active_high", 1, "must be true or false"),
    ("wheel", "id", "LUCKY/../x", "must be a wheel id: 1-32 of A-Z a-z 0-9 _ -"),
    ("staff", "idle_logout_s", 5, "must be a whole number from 15 to 600"),
    ("staff", "restock_idle_s", "2m", "must be a whole number from 30 to 1800"),
    ("staff", "technician_idle_s", 3600, "must be a whole number from 30 to 1800"),
    ("ui", "payment_timeout_s", 600, "must be a whole number from 60 to 540"),
]


@pytest.mark.parametrize(("section", "key", "value", "allowed"), BAD_VALUES)
def test_bad_value_names_key_value_and_what_is_allowed(
    section: str, key: str, value: Any, allowed: str
) -> None:
    message = error_of(with_value(section, key, value))
    assert message.startswith(f"{SOURCE}: {section}.{key} = {value!r}: {allowed}")


def test_every_section_has_a_bad_value_case() -> None:
    assert {case[0] for case in BAD_VALUES} == set(config.SECTIONS)


@pytest.mark.parametrize(
    ("key", "value"),
    [("number", 0), ("number", 100), ("relay_pin", 1), ("sensor_pin", 28), ("relay_pin", True)],
)
def test_bad_compartment_value(key: str, value: Any) -> None:
    data = minimal()
    data["locker"]["compartments"][0][key] = value
    message = error_of(data)
    assert message.startswith(f"{SOURCE}: locker.compartments[1].{key} = {value!r}: ")
    assert "must be a whole number from" in message


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("scanner", "fps"),
        ("printer", "baudrate"),
        ("printer", "paper_mm"),
        ("locker", "pulse_ms"),
        ("offline", "per_member_daily_points"),
        ("ui", "idle_logout_s"),
        ("server", "connect_timeout_s"),
    ],
)
def test_bool_is_not_accepted_as_a_number(section: str, key: str) -> None:
    # TOML true must not pass as 1: bool is a subclass of int in Python.
    assert error_of(with_value(section, key, True)).startswith(
        f"{SOURCE}: {section}.{key} = True: "
    )


@pytest.mark.parametrize("value", [1, 0, "true", "false"])
def test_number_or_string_is_not_accepted_as_a_bool(value: Any) -> None:
    message = error_of(with_value("ui", "fullscreen", value))
    assert message == f"{SOURCE}: ui.fullscreen = {value!r}: " + config._boolean().allowed


def test_bool_from_real_toml_is_rejected_for_int(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("fps = 15", "fps = true")
    with pytest.raises(ConfigError, match=r"scanner\.fps = True: must be a whole number"):
        load_config(write(tmp_path, text))


def test_http_to_non_loopback_host_requires_tls() -> None:
    message = error_of(with_value("server", "url", "http://store.example.com"))
    assert message.startswith(f"{SOURCE}: server.url = 'http://store.example.com': TLS is required")
    assert "https://" in message
    assert "127.0.0.1, localhost, ::1" in message


def test_per_member_limit_may_not_exceed_per_kiosk_limit() -> None:
    data = minimal()
    data["offline"] = {"per_member_daily_points": 4000, "per_kiosk_daily_points": 3000}
    message = error_of(data)
    assert "offline.per_member_daily_points = 4000" in message
    assert "offline.per_kiosk_daily_points (3000)" in message


# --- structure: required, unknown, duplicates --------------------------------------------------


@pytest.mark.parametrize(("section", "key"), [("kiosk", "id"), ("server", "url")])
def test_required_key_missing(section: str, key: str) -> None:
    data = minimal()
    del data[section][key]
    assert error_of(data).startswith(
        f"{SOURCE}: {section}.{key} is missing: it is required and must"
    )


def test_unknown_key_is_named_with_allowed_keys() -> None:
    message = error_of(with_value("printer", "baudrat", 9600))
    assert message.startswith(f"{SOURCE}: printer.baudrat: unknown key (did you mean 'baudrate'?)")
    assert "allowed keys in [printer]: kind, port, baudrate, flow_control" in message


def test_unknown_key_in_compartment() -> None:
    data = minimal()
    data["locker"]["compartments"][0]["relai_pin"] = 7
    message = error_of(data)
    assert message.startswith(f"{SOURCE}: locker.compartments[1].relai_pin: unknown key")
    assert "number, relay_pin, sensor_pin" in message


def test_unknown_section_is_named() -> None:
    data = minimal()
    data["printr"] = {"baudrate": 9600}
    message = error_of(data)
    assert message.startswith(f"{SOURCE}: printr: unknown section (did you mean 'printer'?)")
    assert "kiosk, server, scanner, printer, locker, offline, ui, log" in message


def test_section_that_is_not_a_table() -> None:
    data = minimal()
    data["ui"] = 3
    assert error_of(data) == f"{SOURCE}: ui = 3: must be a table, written as [ui]"


def test_duplicate_pin_names_both_uses() -> None:
    data = minimal()
    data["locker"]["compartments"].append({"number": 2, "relay_pin": 6, "sensor_pin": 7})
    message = error_of(data)
    assert message.startswith(f"{SOURCE}: locker.compartments[2].relay_pin = 6: GPIO 6 is already")
    assert "locker.compartments[1].sensor_pin" in message


def test_relay_and_sensor_of_one_compartment_may_not_share_a_pin() -> None:
    data = minimal()
    data["locker"]["compartments"][0]["sensor_pin"] = 5
    message = error_of(data)
    assert "locker.compartments[1].sensor_pin = 5" in message
    assert "already used as locker.compartments[1].relay_pin" in message


def test_the_buzzer_pin_is_read_and_may_not_be_a_locker_pin() -> None:
    cfg = parse_config(with_value("alarm", "buzzer_pin", 12), SOURCE)
    assert cfg.alarm.buzzer_pin == 12
    message = error_of(with_value("alarm", "buzzer_pin", 6))
    assert message == (
        f"{SOURCE}: alarm.buzzer_pin = 6: GPIO 6 is already used as sensor_pin of compartment "
        "1; each GPIO pin may be used only once"
    )


def test_duplicate_compartment_number() -> None:
    data = minimal()
    data["locker"]["compartments"].append({"number": 1, "relay_pin": 20, "sensor_pin": 21})
    message = error_of(data)
    assert message.startswith(f"{SOURCE}: locker.compartments[2].number = 1: ")
    assert "already defined by locker.compartments[1]" in message


@pytest.mark.parametrize("compartments", [None, [], "1,2,3"])
def test_at_least_one_compartment(compartments: Any) -> None:
    data = minimal()
    if compartments is None:
        del data["locker"]["compartments"]
    else:
        data["locker"]["compartments"] = compartments
    message = error_of(data)
    assert message.startswith(f"{SOURCE}: locker.compartments")
    assert "[[locker.compartments]]" in message


def test_parse_does_not_change_its_input() -> None:
    data = minimal()
    before = copy.deepcopy(data)
    parse_config(data, SOURCE)
    assert data == before


# --- files ---------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: config file not found")
    assert "copy kiosk/kiosk.example.toml" in message


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file") as info:
        load_config(tmp_path)  # a directory
    assert str(info.value).startswith(f"{tmp_path}: ")


@pytest.mark.parametrize(
    "text",
    ['[kiosk]\nid = "k1"\nlanguage = zh\n', '[kiosk]\nid = "k1"\nid = "k2"\n', "[kiosk\n"],
)
def test_toml_syntax_error(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: TOML syntax error: ")
    assert "line" in message
    assert "fix that line" in message


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, b'[kiosk]\nid = "k1"\nstore_name_zh = "' + "店".encode("gbk") + b'"\n')
    with pytest.raises(ConfigError, match="not valid UTF-8: save it as UTF-8"):
        load_config(path)


def test_bad_value_in_file_names_the_file(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("baudrate = 19200", "baudrate = 1234")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: printer.baudrate = 1234: must be one of 9600, 19200, 38400, 57600, 115200"
    )


def test_every_key_is_documented() -> None:
    docs = (Path(config.__file__).parent.parent / "docs" / "config.md").read_text(encoding="utf-8")
    records = [f.type for f in dataclasses.fields(KioskConfig) if f.name != "source"]
    sections = [getattr(config, name) for name in records] + [Compartment]
    for record in sections:
        for f in dataclasses.fields(record):
            assert f"| `{f.name}` |" in docs, f"{record.__name__}.{f.name} is not in the docs"
