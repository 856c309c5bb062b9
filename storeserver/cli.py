"""``storeserver`` command line: serve, seed-demo, enroll-code, technician-code, member-code,
add-account, token, tokens, revoke-token, add-staff, staff-badge, disable-staff, unlock-staff,
revoke-badges, rotate-key, migrate, tls-pin, backup (storeserver/cli_ops.py)."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from pathlib import Path

from . import (
    accounts,
    cli_ops,
    demo,
    embedded,
    keys,
    staff,
    technicians,
    tls_pin,
    wheel,
)
from .cli_base import open_store, settings_from
from .cli_people import (
    cmd_add_account,
    cmd_add_staff,
    cmd_disable_staff,
    cmd_revoke_badges,
    cmd_revoke_token,
    cmd_staff_badge,
    cmd_token,
    cmd_tokens,
    cmd_unlock_staff,
)
from .config import ConfigError, PaymentsChoice, ServerConfig, check_public_url, load
from .errors import ApiError
from .migrations.command import cmd_migrate
from .notify import LogNotifier, WebhookNotifier
from .store import DEFAULT_TIMEZONE, StoreSettings

DEFAULT_DB = "storeserver.db"
SIMULATED_WARNING = "WARNING: simulated payments: anyone can mark a payment paid; demo only"
NO_PROVIDER = (
    "no payment provider is configured: a production store sets [payments] provider = "
    '"none" in its config file (--config PATH; a store without points + cash), the demo runs '
    "'storeserver serve --demo' (simulated payments, which anyone can mark paid)"
)

log = logging.getLogger(__name__)

_settings, _store = settings_from, open_store  # the names the commands below use


OFFLINE_FLAGS = {
    "offline_member_points": "offline_member_daily_points",
    "offline_kiosk_points": "offline_kiosk_daily_points",
    "offline_max_hours": "offline_max_hours",
}


def serve_config(args: argparse.Namespace) -> ServerConfig:
    """The config file (if any) with the command line over it; ConfigError if unusable."""
    cfg = load(args.config, _settings(args)) if args.config else ServerConfig(_settings(args))
    if args.public_url is not None:
        cfg.settings.public_url = check_public_url("--public-url", args.public_url)
    for flag, setting in OFFLINE_FLAGS.items():  # given on the command line: over the file
        if getattr(args, flag) is not None:
            setattr(cfg.settings, setting, getattr(args, flag))
    if args.demo:
        if cfg.payments not in (None, PaymentsChoice.SIMULATED):
            raise ConfigError(
                f"--demo runs simulated payments but {cfg.source} sets [payments] provider = "
                f'"{cfg.payments}": drop --demo or that setting'
            )
        cfg.payments = PaymentsChoice.SIMULATED
    if cfg.payments is None:
        raise ConfigError(NO_PROVIDER)
    return cfg


def cmd_serve(args: argparse.Namespace) -> int:
    from .runner import ServerThread  # uvicorn is imported only to serve

    try:
        cfg = serve_config(args)
    except ConfigError as exc:
        print(f"storeserver serve: {exc}", file=sys.stderr)
        return 2
    notifier = WebhookNotifier(args.webhook_url) if args.webhook_url else LogNotifier()
    store = _store(args, notifier, cfg.settings, cfg.provider())
    if store.simulated_payments:
        print(SIMULATED_WARNING, file=sys.stderr, flush=True)
        log.warning("simulated payments: anyone can mark a payment paid; demo only")
    elif cfg.payments is PaymentsChoice.NONE:
        log.info("no payment provider: redemptions with a cash part are refused")
    with store.db.transaction() as conn:  # publish a week of wheel seed commitments up front
        for (wheel_id,) in conn.execute("SELECT id FROM wheels WHERE active = 1").fetchall():
            wheel.commit_ahead(conn, wheel_id, store.today(), days=7)
    try:
        server = ServerThread(store, args.host, args.port)
    except OSError as exc:
        sys.exit(f"storeserver: cannot listen on {args.host}:{args.port}: {exc.strerror}")
    print(f"store server on {server.url} (database {args.db}, pictures {store.pictures.folder}, "
          f"signing key {store.keys.path})", flush=True)  # fmt: skip
    if store.pay_base_url():
        log.info("pay links start %s", store.pay_base_url())
    if (
        store.simulated_payments
        and not cfg.settings.public_url
        and server.host in ("0.0.0.0", "::")
    ):
        log.warning("pay links name %s, which phones cannot open: pass --public-url", server.url)
    server.serve_forever()
    return 0


def cmd_seed_demo(args: argparse.Namespace) -> int:
    store = _store(args)
    for m in demo.seed(store, args.kiosk):
        print(f"{m['id']}\t{m['tier']}\t{m['balance']} points\t{m['name']}")
    # stdout stays the members table (scripts read it); the staff sign-in goes to stderr
    print("demo staff (scan the badge at a kiosk, then type the PIN):", file=sys.stderr)
    for b in demo.staff_badges(store):
        print(f"{b['staff_id']}\tPIN {b['pin']}\t{b['name']}\t{b['code']}", file=sys.stderr)
    return 0


def cmd_enroll_code(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        code = embedded.enrollment_code(store, args.kiosk, replace=args.replace)
    except ApiError as exc:
        sys.exit(f"storeserver: {exc.message}")
    if args.replace:
        print(
            f"replacement code for kiosk {args.kiosk}: its current token stops working "
            "when this code is used",
            file=sys.stderr,
        )
    print(code)
    return 0


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "unknown user"


def cmd_technician_code(args: argparse.Namespace) -> int:
    store = _store(args)
    by = args.by or f"{_login_name()} (command line)"
    try:
        issued = embedded.technician_code(store, args.kiosk, args.minutes, by)
    except ApiError as exc:
        sys.exit(f"storeserver: {exc.message}")
    if args.json:
        print(json.dumps(issued.view()))
    else:
        print(f"for kiosk {issued.kiosk_id}, once, until {issued.expires_at}", file=sys.stderr)
        print(issued.code)
    return 0


def cmd_member_code(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        out = embedded.member_code(store, args.member_id)
    except Exception as exc:
        sys.exit(f"storeserver: {getattr(exc, 'message', exc)}")
    print(json.dumps(out) if args.json else out["code"])
    return 0


def cmd_rotate_key(args: argparse.Namespace) -> int:
    store = _store(args)
    path = store.keys.path
    try:
        if args.finish:
            had = keys.finish_rotation(path)
            print(f"previous signing key {'removed' if had else 'already gone'}: only {path} "
                  "is trusted")  # fmt: skip
            return 0
        if args.overlap_days < 0:
            sys.exit("storeserver: --overlap-days must be 0 or more")
        now = int(store.clock.now().timestamp())
        keys.rotate(path, now, args.overlap_days * 86400)
    except (keys.KeyFileError, OSError) as exc:
        sys.exit(f"storeserver: {exc}")
    print(f"new signing key in {path}; the previous one is trusted for {args.overlap_days} "
          "days (kiosks learn both at their next heartbeat). Print new staff badges now "
          "(storeserver staff-badge): badges of the previous key stop working when the overlap "
          "ends or with 'rotate-key --finish'.")  # fmt: skip
    return 0


def cmd_tls_pin(args: argparse.Namespace) -> int:
    try:
        print(tls_pin.pin_of_pem(args.cert.read_bytes()))
    except (OSError, ValueError) as exc:
        sys.exit(f"storeserver: cannot read a certificate from {args.cert}: {exc}")
    return 0


def _natural(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="storeserver", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, func, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument(
            "--db", default=DEFAULT_DB, help=f"SQLite database file (default {DEFAULT_DB})"
        )
        p.add_argument(
            "--timezone", default=DEFAULT_TIMEZONE, help="the store's time zone (IANA name)"
        )
        p.add_argument(
            "--pictures",
            type=Path,
            default=None,
            help="folder of item pictures (PNG/JPEG named by items.picture; "
            "default: 'pictures' beside the database)",
        )
        p.add_argument(
            "--signing-key",
            type=Path,
            default=None,
            help="Ed25519 key file (PEM, owner-only) that signs codes and badges "
            "(default: <db stem>.keys/signing.pem beside the database)",
        )
        p.set_defaults(func=func)
        return p

    p = command("serve", cmd_serve, "serve the HTTP API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--config", type=Path, help="server config file (TOML: [server], [payments])")
    p.add_argument(
        "--demo",
        action="store_true",
        help="simulated payments (anyone can mark a payment paid): the demo only",
    )
    p.add_argument(
        "--public-url",
        help="the server's URL as phones reach it, for pay links (over [server] public_url)",
    )
    p.add_argument("--webhook-url", help="POST each points notification here (default: log them)")
    p.add_argument(
        "--hold-expiry", type=int, default=600, help="seconds before an open hold expires"
    )
    p.add_argument(
        "--payment-expiry", type=int, default=300, help="seconds before an unpaid payment expires"
    )
    defaults = StoreSettings()
    p.add_argument(
        "--member-session", type=_positive, default=defaults.member_session_s,
        help="seconds a resolved member code lets its kiosk hold and spin for the member",
    )  # fmt: skip
    p.add_argument(
        "--offline-member-points", type=_natural, default=None,
        help="points one member may redeem offline per store day (kiosks receive it; "
        f"default {defaults.offline_member_daily_points}, or [offline] member_daily_points)",
    )  # fmt: skip
    p.add_argument(
        "--offline-kiosk-points", type=_natural, default=None,
        help="points one kiosk may hand out offline per store day (kiosks receive it; "
        f"default {defaults.offline_kiosk_daily_points}, or [offline] kiosk_daily_points)",
    )  # fmt: skip
    p.add_argument(
        "--offline-max-hours", type=_natural, default=None,
        help="hours after a member code's expiry an offline redemption with it may be made; "
        "kiosks stop offline redemption this long into an outage (0: no offline redemption; "
        f"default {defaults.offline_max_hours}, or [offline] max_hours)",
    )  # fmt: skip
    p = command("seed-demo", cmd_seed_demo, "write the demo store and print its members")
    p.add_argument(
        "--kiosk", action="append", default=None, help="kiosk id to give compartments (repeatable)"
    )
    p = command(
        "enroll-code",
        cmd_enroll_code,
        "print a one-time enrollment code for one kiosk id (valid 24 h)",
    )
    p.add_argument("--kiosk", required=True, help="the kiosk id the code enrolls, e.g. kiosk-07")
    p.add_argument(
        "--replace",
        action="store_true",
        help="the id is enrolled already: the code takes it over and the kiosk's current token "
        "stops working once it is used (a replaced SD card or Pi)",
    )
    p = command(
        "technician-code",
        cmd_technician_code,
        "print a signed technician code that opens one kiosk's diagnostics, once",
    )
    p.add_argument("--kiosk", required=True, help="the enrolled kiosk id the code opens")
    p.add_argument(
        "--minutes",
        type=int,
        default=technicians.DEFAULT_MINUTES,
        help=f"validity (default {technicians.DEFAULT_MINUTES}, at most {technicians.MAX_MINUTES})",
    )
    p.add_argument("--by", help="who it is for, as recorded (default: your login name)")
    p.add_argument("--json", action="store_true", help="print the code and its record as JSON")
    roles = ", ".join(r.value for r in accounts.AccountRole)
    p = command(
        "add-account",
        cmd_add_account,
        f"add an account that calls the API ({roles}) and print its first token",
    )
    p.add_argument("--id", required=True, help="account id, e.g. till-1 or manager-wang")
    p.add_argument("--role", required=True, choices=[r.value for r in accounts.AccountRole])
    p.add_argument("--member", help="member-app only: the member whose codes it mints")
    p.add_argument("--days", type=int, default=accounts.DEFAULT_TOKEN_DAYS,
                   help=f"token validity (default {accounts.DEFAULT_TOKEN_DAYS}, at most {accounts.MAX_TOKEN_DAYS})")  # fmt: skip
    p = command("token", cmd_token, "print a new token for an account")
    p.add_argument("--account", required=True)
    p.add_argument("--days", type=int, default=accounts.DEFAULT_TOKEN_DAYS)
    command("tokens", cmd_tokens, "list every account token: id, account, role, expiry, state")
    p = command("revoke-token", cmd_revoke_token, "revoke a token, or every token of an account")
    p.add_argument("token_id", nargs="?", help="the token's id (tok_...) from 'tokens'")
    p.add_argument("--account", help="revoke every token of this account instead")
    p = command(
        "member-code",
        cmd_member_code,
        "print a fresh signed member code, as the member's app shows",
    )
    p.add_argument("member_id")
    p.add_argument("--json", action="store_true", help="print the code and its expiry as JSON")
    p = command("add-staff", cmd_add_staff, "add a staff member who restocks kiosks")
    p.add_argument("--id", required=True, help="staff id, e.g. S0001 (the badge's subject)")
    p.add_argument("--name", required=True)
    p.add_argument("--pin", help="6-12 digits (default: ask, without echo)")
    p.add_argument(
        "--replace",
        action="store_true",
        help="change an existing staff member's name and PIN (also unlocks and re-enables)",
    )
    p = command(
        "staff-badge",
        cmd_staff_badge,
        "print a signed staff badge code to print on a card",
    )
    p.add_argument("staff_id")
    p.add_argument(
        "--days",
        type=int,
        default=staff.BADGE_DEFAULT_DAYS,
        help=f"validity in days (default {staff.BADGE_DEFAULT_DAYS}, at most {staff.BADGE_MAX_DAYS})",
    )
    p.add_argument("--json", action="store_true", help="print the code and its expiry as JSON")
    p = command(
        "disable-staff",
        cmd_disable_staff,
        "stop a staff member's badges and PIN (kiosks drop their cached PIN at their next sync)",
    )
    p.add_argument("staff_id")
    p = command(
        "unlock-staff",
        cmd_unlock_staff,
        "clear a staff member's wrong-PIN lock (the one that waits for a manager) and counts",
    )
    p.add_argument("staff_id")
    p = command(
        "revoke-badges",
        cmd_revoke_badges,
        "revoke every badge of a staff member printed until now (a lost card); they keep "
        "working with a newly printed one",
    )
    p.add_argument("staff_id")
    p = command(
        "rotate-key",
        cmd_rotate_key,
        "make a new signing key; the previous one stays trusted for an overlap",
    )
    p.add_argument(
        "--overlap-days",
        type=int,
        default=keys.DEFAULT_OVERLAP_DAYS,
        help=f"days the previous key stays trusted (default {keys.DEFAULT_OVERLAP_DAYS})",
    )
    p.add_argument(
        "--finish", action="store_true", help="drop the previous key now (ends the overlap)"
    )
    p = sub.add_parser(
        "migrate",
        help="upgrade the database to this release's schema (backs it up first)",
        description="upgrade the database to this release's schema revision; a copy is made "
        "first (<db>.pre-<revision>.bak, owner-only); stop the server before",
    )
    p.add_argument("--db", default=DEFAULT_DB, help=f"SQLite database file (default {DEFAULT_DB})")
    p.set_defaults(func=cmd_migrate)
    p = sub.add_parser(
        "tls-pin",
        help="print a certificate's pin for the kiosks' server.pins (sha256/ + base64 SPKI)",
    )
    p.add_argument("cert", type=Path, help="the server certificate, PEM")
    p.set_defaults(func=cmd_tls_pin)
    cli_ops.add_commands(sub, DEFAULT_DB)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.INFO if args.command == "serve" else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if getattr(args, "kiosk", "unset") is None:
        args.kiosk = ["kiosk-01"]
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
