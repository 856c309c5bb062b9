"""Load and validate the kiosk configuration (/etc/kiosk/kiosk.toml) into frozen dataclasses.

A kiosk that guesses at its configuration may pulse the wrong relay, so every bad value, unknown
key or syntax error is a ConfigError naming file, dotted key, value and what is allowed. Each
field below is one TOML key with its rule and default; docs/config.md is the reference.
"""

# _key() returns dataclasses.field(), which RUF009 cannot see through.
# ruff: noqa: RUF009

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from kiosk.config_rules import (
    _CAMERA_DEVICE,
    _DEVICE_PATH,
    _GPIO,
    _KIOSK_ID,
    _PIN,
    _PINS,
    _SERVER_URL,
    _boolean,
    _choice,
    _int_range,
    _Invalid,
    _key,
    _number_range,
    _path,
    _Rule,
    _string,
    _zone,
)
from kiosk.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/kiosk/kiosk.toml")
EXAMPLE_CONFIG = "kiosk/kiosk.example.toml"

_T = TypeVar("_T")


# --- sections: one frozen dataclass each, fields in the order they are checked ---------------


@dataclass(frozen=True, kw_only=True)
class KioskSection:
    """[kiosk]: who this kiosk is and where it keeps its state."""

    id: str = _key(_KIOSK_ID)
    store_name_zh: str = _key(_string(40), "会员积分兑换")
    store_name_en: str = _key(_string(40), "Loyalty Kiosk")
    language: str = _key(_choice("zh", "en"), "zh")
    state_dir: Path = _key(_path(), Path("/var/lib/kiosk"))
    safe_mode_on_corrupt_journal: bool = _key(_boolean(), True)
    # the store's day (offline limits, coupon dates) and the time printed on receipts
    timezone: str = _key(
        _Rule("must be an IANA time zone such as Asia/Shanghai", _zone), "Asia/Shanghai"
    )


@dataclass(frozen=True, kw_only=True)
class ServerSection:
    """[server]: how to reach and trust the store server. Relative files are under state_dir."""

    url: str = _key(_SERVER_URL)
    token_file: Path = _key(_path("kiosk.state_dir"), Path("token"))
    ca_bundle: Path | None = _key(_path(), None)
    pin_sha256: str | None = _key(_PIN, None)  # deprecated: pins the certificate, not its key
    pins: tuple[str, ...] = _key(_PINS, ())
    connect_timeout_s: float = _key(_number_range(0.1, 30), 3.0)
    read_timeout_s: float = _key(_number_range(0.1, 60), 10.0)
    public_key_file: Path = _key(_path("kiosk.state_dir"), Path("server_key.pub"))


@dataclass(frozen=True, kw_only=True)
class ScannerSection:
    """[scanner]: the QR camera (USB through OpenCV, or a CSI module through Picamera2), or its
    simulator fed from sim_source."""

    kind: str = _key(_choice("camera", "picamera2", "sim"), "camera")
    device: int | str = _key(_CAMERA_DEVICE, 0)
    width: int = _key(_int_range(160, 3840), 640)
    height: int = _key(_int_range(120, 2160), 480)
    fps: int = _key(_int_range(1, 60), 15)
    decoder: str = _key(_choice("auto", "pyzbar", "zxing"), "auto")
    repeat_ignore_s: float = _key(_number_range(0, 60), 3.0)
    sim_source: Path | None = _key(_path(), None)


@dataclass(frozen=True, kw_only=True)
class PrinterSection:
    """[printer]: the ESC/POS receipt printer or its simulator."""

    kind: str = _key(_choice("serial", "sim"), "serial")
    port: str = _key(_DEVICE_PATH, "/dev/ttyUSB0")
    baudrate: int = _key(_choice(9600, 19200, 38400, 57600, 115200), 19200)
    flow_control: str = _key(_choice("none", "rtscts", "xonxoff"), "none")
    paper_mm: int = _key(_choice(58, 80), 58)
    encoding: str = _key(_choice("gb18030", "gbk"), "gb18030")
    write_timeout_s: float = _key(_number_range(0.5, 60), 5.0)


@dataclass(frozen=True, kw_only=True)
class Compartment:
    """One [[locker.compartments]] table: a door, its relay and its door sensor (BCM numbers)."""

    number: int = _key(_int_range(1, 99))
    relay_pin: int = _key(_GPIO)
    sensor_pin: int = _key(_GPIO)


@dataclass(frozen=True, kw_only=True)
class LockerSection:
    """[locker]: the gift compartments, their relays and door sensors."""

    kind: str = _key(_choice("gpio", "sim"), "gpio")
    relay_active_high: bool = _key(_boolean(), False)
    pulse_ms: int = _key(_int_range(50, 2000), 300)
    # 5 s, not 20: a spring-loaded door pops open within a second of the pulse, so a door still
    # shut after 5 s is jammed, and the member should not stare at a closed door for 20 s.
    door_open_timeout_s: float = _key(_number_range(1, 300), 5.0)
    door_close_timeout_s: float = _key(_number_range(1, 3600), 120.0)
    compartments: tuple[Compartment, ...] = _key(None)  # sorted by number; see _compartments()


@dataclass(frozen=True, kw_only=True)
class AlarmSection:
    """[alarm]: a buzzer or warning light sounded while a door alarm is active (optional).

    It sits on the locker's GPIO header, so ``[locker] kind`` picks real pins or the simulator.
    """

    buzzer_pin: int | None = _key(_GPIO, None)  # None: no buzzer, the alarm is on screen only
    active_high: bool = _key(_boolean(), True)  # most buzzer modules sound on a high level


@dataclass(frozen=True, kw_only=True)
class OfflineSection:
    """[offline]: floor limits for redemptions while the store server is unreachable."""

    per_member_daily_points: int = _key(_int_range(0, 1_000_000), 500)
    per_kiosk_daily_points: int = _key(_int_range(0, 10_000_000), 3000)
    member_cache_hours: int = _key(_int_range(0, 168), 24)
    # a staff PIN hash on the SD card is crackable by whoever takes the card: keep it briefly
    staff_pin_cache_days: float = _key(_number_range(0, 7), 3.0)
    max_offline_hours: int = _key(_int_range(0, 72), 8)


@dataclass(frozen=True, kw_only=True)
class UiSection:
    """[ui]: touch-screen behaviour."""

    idle_logout_s: int = _key(_int_range(10, 300), 30)
    font_path: Path = _key(_path(), Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"))
    fullscreen: bool = _key(_boolean(), True)
    # off by default: the camera also sees shoppers (PIPL); docs/privacy.md
    camera_preview: bool = _key(_boolean(), False)
    # how long the payment screen waits for the cash part (below the server's 600 s hold)
    payment_timeout_s: int = _key(_int_range(60, 540), 240)


@dataclass(frozen=True, kw_only=True)
class StaffSection:
    """[staff]: how long staff and technician screens wait for a tap."""

    idle_logout_s: int = _key(_int_range(15, 600), 60)  # staff sign-in and menu
    restock_idle_s: int = _key(_int_range(30, 1800), 120)  # a restock, once its door is shut
    technician_idle_s: int = _key(_int_range(30, 1800), 180)  # the diagnostics screen


@dataclass(frozen=True, kw_only=True)
class WheelSection:
    """[wheel]: the lucky wheel this kiosk offers (synced, shown and spun)."""

    id: str = _key(
        _string(32, r"[A-Za-z0-9_-]+", "must be a wheel id: 1-32 of A-Z a-z 0-9 _ -"), "LUCKY"
    )


@dataclass(frozen=True, kw_only=True)
class LogSection:
    """[log]: logging."""

    level: str = _key(_choice("DEBUG", "INFO", "WARNING", "ERROR"), "INFO")


@dataclass(frozen=True)
class KioskConfig:
    """The whole validated configuration; `source` is the file (or name) it came from."""

    kiosk: KioskSection
    server: ServerSection
    scanner: ScannerSection
    printer: PrinterSection
    locker: LockerSection
    offline: OfflineSection
    ui: UiSection
    log: LogSection
    source: str
    alarm: AlarmSection = field(default_factory=AlarmSection)
    wheel: WheelSection = field(default_factory=WheelSection)
    staff: StaffSection = field(default_factory=StaffSection)


SECTIONS = tuple(f.name for f in fields(KioskConfig) if f.name != "source")


# --- reading tables --------------------------------------------------------------------------


def _unknown(source: str, dotted: str, allowed: list[str], noun: str, where: str) -> ConfigError:
    close = difflib.get_close_matches(dotted.rpartition(".")[2], allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(
        f"{source}: {dotted}: unknown {noun}{hint}; allowed {noun}s{where}: {', '.join(allowed)}"
    )


def _build(
    source: str, name: str, data: Any, record: type[_T], label: str = "", **given: Any
) -> _T:
    """Check one TOML table against `record`'s fields and build it; `given` fields are not read."""
    label = label or f"[{name}]"
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {name} = {data!r}: must be a table, written as {label}")
    allowed = [f.name for f in fields(record)]
    # Unknown keys first: a misspelt required key should say "did you mean", not "missing".
    for key in data:
        if key not in allowed:
            raise _unknown(source, f"{name}.{key}", allowed, "key", f" in {label}")
    values = dict(given)
    for f in fields(record):
        rule, dotted = f.metadata["rule"], f"{name}.{f.name}"
        if f.name in given or (f.name not in data and f.default is not MISSING):
            continue  # the dataclass default applies
        if f.name not in data:
            raise ConfigError(f"{source}: {dotted} is missing: it is required and {rule.allowed}")
        value = data[f.name]
        try:
            if rule.ok(value):
                values[f.name] = rule.convert(value)
                continue
            allowed_text = rule.allowed
        except _Invalid as exc:
            allowed_text = exc.args[0]
        raise ConfigError(f"{source}: {dotted} = {value!r}: {allowed_text}")
    return record(**values)


def _compartments(source: str, raw: Any) -> tuple[Compartment, ...]:
    how = "add one [[locker.compartments]] table per door, each with number, relay_pin, sensor_pin"
    if raw is None:
        raise ConfigError(f"{source}: locker.compartments is missing: {how}")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(
            f"{source}: locker.compartments = {raw!r}: must hold at least one table; {how}"
        )
    numbers: dict[int, str] = {}
    pins: dict[int, str] = {}  # GPIO -> the dotted key that uses it
    result = []
    for index, item in enumerate(raw, start=1):
        name = f"locker.compartments[{index}]"
        comp = _build(source, name, item, Compartment, "[[locker.compartments]]")
        if comp.number in numbers:
            raise ConfigError(
                f"{source}: {name}.number = {comp.number!r}: compartment {comp.number} is already "
                f"defined by {numbers[comp.number]}; numbers must be unique"
            )
        numbers[comp.number] = name
        for key, pin in (("relay_pin", comp.relay_pin), ("sensor_pin", comp.sensor_pin)):
            if pin in pins:
                raise ConfigError(
                    f"{source}: {name}.{key} = {pin!r}: GPIO {pin} is already used as {pins[pin]}; "
                    "each GPIO pin may be used only once"
                )
            pins[pin] = f"{name}.{key}"
        result.append(comp)
    return tuple(sorted(result, key=lambda c: c.number))


def _check_alarm_pin(
    source: str, alarm: AlarmSection, compartments: tuple[Compartment, ...]
) -> None:
    for comp in compartments:
        for key in ("relay_pin", "sensor_pin"):
            if alarm.buzzer_pin == getattr(comp, key):
                raise ConfigError(
                    f"{source}: alarm.buzzer_pin = {alarm.buzzer_pin!r}: GPIO {alarm.buzzer_pin} "
                    f"is already used as {key} of compartment {comp.number}; each GPIO pin may "
                    "be used only once"
                )


# --- public API ------------------------------------------------------------------------------


def parse_config(data: dict[str, Any], source: str) -> KioskConfig:
    """Validate already-parsed TOML; `source` names the file in error messages."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the configuration must be a TOML table, got {data!r}")
    for key in data:
        if key not in SECTIONS:
            raise _unknown(source, key, list(SECTIONS), "section", "")

    def section(name: str, record: type[_T], **given: Any) -> _T:
        return _build(source, name, data.get(name, {}), record, **given)

    kiosk = section("kiosk", KioskSection)
    server = section("server", ServerSection)
    if server.pins and server.pin_sha256:
        raise ConfigError(
            f"{source}: server.pin_sha256 = {server.pin_sha256!r}: remove it, server.pins "
            "replaces it (pin_sha256 pins the certificate, which every renewal changes)"
        )
    # Joining an absolute path onto state_dir keeps it as it is.
    server = replace(
        server,
        token_file=kiosk.state_dir / server.token_file,
        public_key_file=kiosk.state_dir / server.public_key_file,
    )
    scanner = section("scanner", ScannerSection)
    if scanner.kind == "picamera2" and not isinstance(scanner.device, int):
        raise ConfigError(
            f"{source}: scanner.device = {scanner.device!r}: a picamera2 camera is a number "
            "(0 for the first CSI camera, as `rpicam-hello --list-cameras` numbers them)"
        )
    printer = section("printer", PrinterSection)
    locker = section("locker", LockerSection, compartments=())
    compartments = _compartments(source, data.get("locker", {}).get("compartments"))
    alarm = section("alarm", AlarmSection)
    _check_alarm_pin(source, alarm, compartments)
    offline = section("offline", OfflineSection)
    if offline.per_member_daily_points > offline.per_kiosk_daily_points:
        raise ConfigError(
            f"{source}: offline.per_member_daily_points = {offline.per_member_daily_points!r}: "
            f"must not exceed offline.per_kiosk_daily_points ({offline.per_kiosk_daily_points})"
        )
    return KioskConfig(
        kiosk=kiosk,
        server=server,
        scanner=scanner,
        printer=printer,
        locker=replace(locker, compartments=compartments),
        offline=offline,
        ui=section("ui", UiSection),
        log=section("log", LogSection),
        source=source,
        alarm=alarm,
        wheel=section("wheel", WheelSection),
        staff=section("staff", StaffSection),
    )


def load_config(path: str | os.PathLike[str] | None = None) -> KioskConfig:
    """Read and validate the TOML file at `path` (default DEFAULT_CONFIG_PATH)."""
    path = Path(DEFAULT_CONFIG_PATH if path is None else path)
    source = str(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{source}: config file not found: copy {EXAMPLE_CONFIG} to {source} and edit it, "
            "or pass the path of the right file"
        ) from exc
    except OSError as exc:
        raise ConfigError(
            f"{source}: cannot read the config file ({exc.strerror}): make it a regular file "
            "readable by the kiosk user"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: the file is not valid UTF-8: save it as UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{source}: TOML syntax error: {exc}: fix that line (strings need double quotes, "
            "one key = value per line, each key once per table)"
        ) from exc
    return parse_config(data, source)
