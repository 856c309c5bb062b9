"""``kiosk doctor``: what a technician runs first over SSH (docs/operations.md).

Each check says what it saw and, for a problem, the fix. The order follows how a kiosk
fails: configuration, enrollment, the store server (reachable, clock, token), the devices,
free space, the service under systemd, crashes and restarts, the SD card and power supply
(kernel log), the journal. A check that cannot run here (no systemd, no right to read the
kernel log) says so as ``info``, which is not a problem.

Everything outside Python goes through ``Probes`` (the command runner, disk usage, the clock,
``/dev``, the store server client), so tests can stand in for systemctl and journalctl.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kiosk.commands.doctor_base import (  # noqa: F401 - re-exported: kiosk.commands.doctor is the API
    Check,
    CommandResult,
    Level,
    Runner,
    fail,
    info,
    last_line,
    ok,
    run_command,
    warn,
)
from kiosk.commands.doctor_camera import camera_check
from kiosk.config import KioskConfig, KioskSection, ServerSection, load_config
from kiosk.domain.member_codes import load_public_keys
from kiosk.errors import ConfigError, KioskError, Rejected
from kiosk.services.health import check_server
from kiosk.storage import tables
from kiosk.storage.journal_reader import (
    SAFE_MODE_NAME,
    quarantined,
    read_journal,
    safe_mode_reason,
)
from kiosk.sync.client import RetryPolicy, StoreServerClient

MIN_FREE_WARN = 200 * 2**20
MIN_FREE_FAIL = 50 * 2**20  # below this, a journal step may fail mid-transaction
SKEW_WARN_S = 10.0
SKEW_FAIL_S = 30.0  # member codes live about 60 s and allow 30 s of drift (CLOCK_SKEW_S)
SLOW_S = 1.0
SINCE = "-7d"  # how far back crashes, restarts and kernel errors are looked for

FIX_ENROLL = 'enroll the kiosk: make a code for its id on the store server (storeserver enroll-code --kiosk ID; --replace if the id is enrolled already) and enroll with it as docs/operations.md "Enrolling" shows'
FIX_NETWORK = "check the network (cable, Wi-Fi), that the store server runs, and server.url: `curl -v {url}/v1/health`"
FIX_CLOCK = "member codes live about 60 s: turn on time sync (`timedatectl set-ntp true`) and check `timedatectl timesync-status` reaches a time server (the Pi has no battery clock)"
FIX_DISK = "free space: `sudo journalctl --vacuum-size=50M`, `sudo apt-get clean`; find what grows with `sudo du -xh / | sort -h | tail`"
FIX_SD = "the card is failing or its power was cut: back up /var/lib/kiosk, replace the SD card (an endurance card), and check the power supply"
FIX_POWER = "use the official 5.1 V supply (3 A for a Pi 4, 5 A for a Pi 5) with its own cable: under-voltage corrupts SD cards"
FIX_SAFE_MODE = "check each transaction in the quarantined journal against the store server (`kiosk logs <txn>`), then delete {marker} and `systemctl restart kiosk`"
FIX_NEEDS_CHECK = "check the latch and the reed switch; then staff sign in (badge + PIN), open each compartment, count what is inside and close it: the count clears the flag"
FIX_QUARANTINE = "read REASON.txt in each, make sure their transactions were settled with the store server, then copy the folders off the kiosk and remove them"


def _doctor_client(server: ServerSection) -> StoreServerClient:
    return StoreServerClient.from_config(server, retry=RetryPolicy(attempts=1))


@dataclass
class Probes:
    """The doctor's view of the machine; tests replace what they simulate."""

    runner: Runner = run_command
    disk_usage: Callable[[Path], tuple[int, int, int]] = shutil.disk_usage
    clock: Callable[[], float] = time.time
    dev_dir: Path = Path("/dev")
    unit: str = "kiosk"
    make_client: Callable[[ServerSection], StoreServerClient] = _doctor_client
    # False (`kiosk doctor --no-service`): the kiosk runs outside systemd (kiosk-provision
    # update's process manager, a test folder): the unit's state and restarts are left out
    service: bool = True


def run_doctor(config_path: str | os.PathLike[str], probes: Probes | None = None) -> list[Check]:
    """Every check, in the order a technician should read them."""
    p = probes or Probes()
    checks: list[Check] = []
    try:
        cfg: KioskConfig | None = load_config(config_path)
    except KioskError as exc:
        cfg = None
        fix = f"fix {config_path} as the message says, then run `kiosk check-config`"
        checks.append(fail("config", str(exc), fix))
    if cfg is not None:
        checks.append(ok("config", f"{cfg.source}: kiosk {cfg.kiosk.id}, server {cfg.server.url}"))
        checks.append(_enrollment(cfg.server))
        if cfg.server.pin_sha256:
            checks.append(_old_pin(cfg.server))
        checks += _server(cfg.server, p)
        checks += _devices(cfg, p)
        state_dir = cfg.kiosk.state_dir
    else:
        state_dir = KioskSection.__dataclass_fields__["state_dir"].default
        checks.append(info("enrollment, server, devices", "not checked: the config does not load"))
    checks.append(_disk(state_dir, p))
    if p.service:
        checks += _service(p)
        checks.append(_restarts(p))
    else:
        checks.append(info("service, restarts", "left out (--no-service): not run by systemd"))
    checks += _kernel(p)
    checks.append(_journal(state_dir))
    if checks[-1].ok:
        checks.append(_needs_check(state_dir))
    return checks


# ---- enrollment and the store server --------------------------------------------------------


def _enrollment(server: ServerSection) -> Check:
    token, key, name = server.token_file, server.public_key_file, "enrollment"
    try:
        st = token.stat()
        if not token.read_text(encoding="ascii").strip():
            return fail(name, f"kiosk token {token} is empty", FIX_ENROLL)
    except FileNotFoundError:
        return fail(name, f"no kiosk token at {token}: the kiosk is not enrolled", FIX_ENROLL)
    except (OSError, UnicodeDecodeError) as exc:
        how = "run as root or the kiosk user (`sudo kiosk doctor`); if it stays unreadable, "
        return fail(name, f"cannot read the kiosk token {token}: {exc}", how + FIX_ENROLL)
    try:
        load_public_keys(key.read_text(encoding="ascii"))
    except FileNotFoundError:
        return fail(name, f"no store public key at {key}: codes cannot be checked", FIX_ENROLL)
    except (OSError, UnicodeDecodeError, ConfigError):
        return fail(name, f"store public key {key} is not a 32-byte Ed25519 key", FIX_ENROLL)
    if st.st_mode & 0o077:
        mode = f"{st.st_mode & 0o777:04o}"
        return warn(name, f"kiosk token {token} has mode {mode}: others can read it", f"chmod 600 {token}")  # fmt: skip
    folder_owner = token.parent.stat().st_uid
    if st.st_uid != folder_owner:
        detail = (
            f"kiosk token {token} is owned by uid {st.st_uid}, its folder by uid {folder_owner}"
        )
        return warn(name, detail, f"chown --reference={token.parent} {token}")
    return ok(name, f"token {token} (0600) and store key {key} present")


def _old_pin(server: ServerSection) -> Check:
    return warn(
        "pinning",
        f"server.pin_sha256 pins the store's certificate ({server.pin_sha256[:16]}...): the kiosk "
        "will refuse the server after its next certificate renewal",
        'replace it with server.pins = ["sha256/..."] (on the store server: `storeserver '
        "tls-pin server.pem`), which pins the server's key and survives renewals",
    )


def _server(server: ServerSection, p: Probes) -> list[Check]:
    client = p.make_client(server)
    try:
        sent = p.clock()
        reached = check_server(client.health, server.url)  # the probe the technician's screen uses
        if not reached.reachable:
            return [
                fail("server", reached.detail, FIX_NETWORK.format(url=server.url)),
                info("clock", "not measured: the store server did not answer"),
                info("server token", "not checked: the store server did not answer"),
            ]
        latency, received = (reached.latency_ms or 0.0) / 1000, p.clock()
        said = f"{server.url} answered in {latency * 1000:.0f} ms"
        if latency > SLOW_S:
            reach = warn("server", said + ": slow", "check the network: members wait on each call")
        else:
            reach = ok("server", said)
        return [reach, _clock(reached.server_time, (sent + received) / 2), _token(client)]
    finally:
        client.close()


def _clock(server_time: str, local: float) -> Check:
    try:
        skew = dt.datetime.fromisoformat(server_time).timestamp() - local
    except ValueError:
        return warn("clock", f"unreadable server time {server_time!r}", "update the store server")
    side = "behind" if skew > 0 else "ahead of"
    detail = f"kiosk clock is {abs(skew):.0f} s {side} the store server"
    if abs(skew) > SKEW_FAIL_S:
        return fail("clock", detail, FIX_CLOCK)
    if abs(skew) > SKEW_WARN_S:
        return warn("clock", detail, FIX_CLOCK)
    return ok("clock", detail)


def _token(client: StoreServerClient) -> Check:
    name = "server token"
    if not client.token:
        return info(name, "not checked: no token (see enrollment)")
    try:
        client.catalog()  # an authenticated read that changes nothing on the server
    except Rejected as exc:
        if exc.status in (401, 403):
            why = "it was re-enrolled elsewhere or the server's database was replaced"
            return fail(name, f"the store server refused this kiosk's token ({exc.code}): {why}", FIX_ENROLL)  # fmt: skip
        return warn(name, str(exc), "check the kiosk id and the store server's log")
    except KioskError as exc:
        return warn(name, str(exc), "run the doctor again; if it persists, read the server's log")
    return ok(name, "accepted (catalog read)")


# ---- devices and disk -----------------------------------------------------------------------


def _present(name: str, kind: str, path: Path | None, fix: str) -> Check:
    if kind == "sim":
        return info(name, f'simulated ({name} kind = "sim"): fine on a desk, not on a kiosk')
    if path is not None and path.exists():
        return ok(name, f"{path} present")
    return fail(name, f"{path or 'no device'} not found", fix)


def _devices(cfg: KioskConfig, p: Probes) -> list[Check]:
    dev = p.dev_dir
    camera = camera_check(cfg.scanner, dev)
    fix = f"plug in and power the printer; `ls {dev}/ttyUSB* {dev}/ttyACM*` shows its port: set printer.port to it"
    printer = _present("printer", cfg.printer.kind, Path(cfg.printer.port), fix)
    chips = sorted(dev.glob("gpiochip*"))
    fix = 'no GPIO character device: use Raspberry Pi OS bookworm; on a desk set [locker] kind = "sim"'
    locker = _present("locker", cfg.locker.kind, chips[0] if chips else None, fix)
    return [camera, printer, locker]


def _disk(state_dir: Path, p: Probes) -> Check:
    where = state_dir
    while not where.exists() and where != where.parent:
        where = where.parent  # no state folder yet: the file system it will be on counts
    try:
        free = p.disk_usage(where)[2]
    except OSError as exc:
        return warn("disk space", f"cannot measure {where}: {exc.strerror}", "`findmnt /`: is / mounted read-write?")  # fmt: skip
    detail = f"{free / 2**20:.0f} MB free for {state_dir}"
    if free < MIN_FREE_FAIL:
        return fail("disk space", detail + ": journal writes will fail", FIX_DISK)
    if free < MIN_FREE_WARN:
        return warn("disk space", detail, FIX_DISK)
    return ok("disk space", detail)


# ---- systemd and the system log -------------------------------------------------------------


def _no_systemd(r: CommandResult) -> bool:
    text = r.stdout + r.stderr
    return r.returncode == 127 or "booted with systemd" in text or "connect to bus" in text


def _service(p: Probes) -> list[Check]:
    unit = f"{p.unit}.service"
    props = "LoadState,ActiveState,SubState,Result,NRestarts,ActiveEnterTimestamp,UnitFileState"
    r = p.runner(["systemctl", "show", "-p", props, unit])
    if _no_systemd(r) or r.returncode != 0:
        return [info("service", f"not run under systemd ({last_line(r)}): state not checked")]
    v = dict(line.partition("=")[::2] for line in r.stdout.splitlines())
    if v.get("LoadState") == "not-found":
        fix = f"install systemd/{unit} in /etc/systemd/system, `systemctl daemon-reload`, `systemctl enable --now {p.unit}`"
        return [fail("service", f"{unit} is not installed", fix)]
    state, result, out = v.get("ActiveState", "?"), v.get("Result", "?"), []
    if state == "active":
        since = v.get("ActiveEnterTimestamp") or "?"
        restarts = int(v.get("NRestarts") or 0)
        again = f", {restarts} automatic restart(s) (see crashes and restarts)" if restarts else ""
        out.append(ok("service", f"{unit} active ({v.get('SubState')}) since {since}{again}"))
    elif state in ("activating", "reloading"):
        fix = f"it is ready after the first UI frame; if it stays {state}, read `journalctl -u {p.unit} -b`"
        out.append(warn("service", f"{unit} is {state}", fix))
    else:
        fix = f"read why in `journalctl -u {p.unit} -b -p warning`, fix it, then `systemctl reset-failed {p.unit} && systemctl start {p.unit}`"
        if result == "start-limit-hit":
            fix = "it failed again and again and systemd gave up: " + fix
        out.append(fail("service", f"{unit} is {state} (result {result})", fix))
    if v.get("UnitFileState", "enabled") not in ("enabled", "static"):
        detail = f"{unit} is {v['UnitFileState']}: it will not start after a reboot"
        out.append(warn("service enabled", detail, f"systemctl enable {p.unit}"))
    return out


RESTART_LINES = "Watchdog timeout|Main process exited|Start request repeated too quickly"


def _restarts(p: Probes) -> Check:
    """Watchdog kills, crashes and core dumps of the last days (systemd's lines about the unit)."""
    name = "crashes and restarts"
    r = p.runner(["journalctl", "-u", p.unit, f"--since={SINCE}", "--no-pager", "-o", "short-iso", "--grep", RESTART_LINES])  # fmt: skip
    if _no_systemd(r) or (r.returncode != 0 and (r.returncode != 1 or r.stderr.strip())):
        return info(name, f"system log not readable ({last_line(r)})", "run `sudo kiosk doctor`")
    lines = [ln for ln in r.stdout.splitlines() if ln and not ln.startswith("-- ")]
    dumps = p.runner(["coredumpctl", "list", "--no-pager", "--no-legend", f"--since={SINCE}", f"COREDUMP_UNIT={p.unit}.service"])  # fmt: skip
    cores = dumps.stdout.splitlines() if dumps.returncode == 0 else []
    watchdog = sum("Watchdog timeout" in ln for ln in lines)
    exits = sum("Main process exited" in ln for ln in lines)  # a watchdog kill is one too
    counts = (
        (watchdog, "watchdog kill(s): the UI froze"),
        (max(0, exits - watchdog), "crash(es)"),
        (sum("too quickly" in ln for ln in lines), "start-limit stop(s)"),
        (len(cores), "core dump(s)"),
    )
    found = [f"{n} {what}" for n, what in counts if n]
    if not found:
        return ok(name, "none in the last 7 days")
    last = (lines or cores)[-1]
    fix = f"read the log around them: `journalctl -u {p.unit} --since {SINCE} -p warning`"
    fix += "; core dumps: `coredumpctl info`" if cores else ""
    fix += "; a line with TXN=<id> names the transaction: `kiosk logs <id>`"
    return warn(name, f"last 7 days: {', '.join(found)}; last: {last}", fix)


SD_ERRORS = re.compile(
    r"mmc\d+: .*(error|timeout|timed out|never left busy)|mmcblk\d+.*error|"
    r"I/O error.*mmcblk|EXT4-fs (error|warning).*mmcblk|medium error.*mmcblk",
    re.IGNORECASE,
)
UNDERVOLTAGE = re.compile(r"under-?voltage detected", re.IGNORECASE)


def _kernel(p: Probes) -> list[Check]:
    r = p.runner(["journalctl", "_TRANSPORT=kernel", f"--since={SINCE}", "--no-pager", "-o", "short-iso"])  # fmt: skip
    said = r.stdout + r.stderr
    unreadable = ("not seeing messages", "insufficient permissions", "No journal files")
    if r.returncode != 0 or any(why in said for why in unreadable):
        r = p.runner(["dmesg", "--time-format=iso"])  # this boot only, better than nothing
        if r.returncode != 0:
            why = f"kernel log not readable as this user ({last_line(r)})"
            fix = "run `sudo kiosk doctor` to check the SD card and power supply"
            return [info("SD card", why, fix), info("power supply", why, fix)]
    lines = r.stdout.splitlines()
    sd = [ln for ln in lines if SD_ERRORS.search(ln)]
    volt = [ln for ln in lines if UNDERVOLTAGE.search(ln)]
    return [
        fail("SD card", f"{len(sd)} SD-card error(s) in the kernel log; last: {sd[-1]}", FIX_SD)
        if sd
        else ok("SD card", "no SD-card errors in the kernel log"),
        warn("power supply", f"under-voltage {len(volt)} time(s); last: {volt[-1]}", FIX_POWER)
        if volt
        else ok("power supply", "no under-voltage in the kernel log"),
    ]


# ---- the transaction journal ----------------------------------------------------------------


def _journal(state_dir: Path) -> Check:
    marker = state_dir / SAFE_MODE_NAME
    try:
        moved = quarantined(state_dir)
        reason = safe_mode_reason(state_dir)
    except OSError as exc:
        return info("journal", f"cannot read {state_dir} ({exc.strerror})", "`sudo kiosk doctor`")
    if reason is not None:
        return fail("journal", f"safe mode: {reason}", FIX_SAFE_MODE.format(marker=marker))
    if moved:
        names = ", ".join(q.name for q in moved)
        return warn("journal", f"corrupt journal(s) kept in {state_dir}: {names}", FIX_QUARANTINE)
    return ok("journal", f"{state_dir}: not in safe mode, no corrupt journal kept")


# ---- output ---------------------------------------------------------------------------------


def problems(checks: Sequence[Check]) -> list[Check]:
    return [c for c in checks if not c.ok]


def format_report(checks: Sequence[Check]) -> str:
    """Every check, one line each; then the problems, numbered, each with its fix."""
    width = max((len(c.name) for c in checks), default=0)
    lines = [f"  {c.level.value:<4}  {c.name:<{width}}  {c.detail}" for c in checks]
    bad = problems(checks)
    if not bad:
        return "\n".join([*lines, "", "no problems found"])
    lines += ["", f"{len(bad)} problem{'s' if len(bad) > 1 else ''}:"]
    for n, c in enumerate(bad, 1):
        lines += [f"  {n}. {c.name}: {c.detail}", f"     fix: {c.fix or 'see docs/operations.md'}"]
    return "\n".join(lines)


def _needs_check(state_dir: Path) -> Check:
    """Compartments the kiosk will not open for members until staff count them."""
    try:
        flags = read_journal(state_dir).tables.get(tables.COMPARTMENT_FLAGS, {})
    except KioskError as exc:
        return info("compartments", str(exc), "`sudo kiosk doctor`")
    if not flags:
        return ok("compartments", "none waits for a staff check")
    listed = ", ".join(
        f"{n} (txn {r.get('txn_id', '?')})"
        for n, r in sorted(flags.items(), key=lambda kv: int(kv[0]))
    )
    return warn("compartments", f"waiting for a staff check: {listed}", FIX_NEEDS_CHECK)
