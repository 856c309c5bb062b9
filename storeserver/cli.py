"""``storeserver`` command line: serve, seed-demo, enroll-code, member-code, staff-token,
add-staff, staff-badge, disable-staff."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from pathlib import Path

from . import demo, kiosks, members, staff, wheel
from .errors import ApiError
from .notify import LogNotifier, Notifier, WebhookNotifier
from .store import DEFAULT_TIMEZONE, Store, StoreSettings

DEFAULT_DB = "storeserver.db"


def _store(args: argparse.Namespace, notifier: Notifier | None = None) -> Store:
    settings = StoreSettings(timezone=args.timezone, pictures_dir=args.pictures)
    if hasattr(args, "hold_expiry"):
        settings.hold_expiry_s = args.hold_expiry
        settings.payment_expiry_s = args.payment_expiry
        settings.member_session_s = args.member_session
        settings.offline_member_daily_points = args.offline_member_points
        settings.offline_kiosk_daily_points = args.offline_kiosk_points
        settings.offline_max_hours = args.offline_max_hours
    try:
        return Store(args.db, notifier=notifier, settings=settings)
    except ValueError as exc:
        sys.exit(f"storeserver: {exc}")


def cmd_serve(args: argparse.Namespace) -> int:
    from .runner import ServerThread  # uvicorn is imported only to serve

    notifier = WebhookNotifier(args.webhook_url) if args.webhook_url else LogNotifier()
    store = _store(args, notifier)
    with store.db.transaction() as conn:  # publish a week of wheel seed commitments up front
        for (wheel_id,) in conn.execute("SELECT id FROM wheels WHERE active = 1").fetchall():
            wheel.commit_ahead(conn, wheel_id, store.today(), days=7)
    try:
        server = ServerThread(store, args.host, args.port)
    except OSError as exc:
        sys.exit(f"storeserver: cannot listen on {args.host}:{args.port}: {exc.strerror}")
    print(f"store server on {server.url} (database {args.db}, pictures {store.pictures.folder})",
          flush=True)  # fmt: skip
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
    with store.db.transaction() as conn:
        print(kiosks.new_enrollment_code(conn, store.clock))
    return 0


def cmd_staff_token(args: argparse.Namespace) -> int:
    store = _store(args)
    with store.db.transaction() as conn:
        print(kiosks.new_staff_token(conn, store.clock, args.name))
    return 0


def cmd_member_code(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        with store.db.transaction() as conn:
            out = members.issue_code(store.ledger, conn, store.signing_key, args.member_id)
    except Exception as exc:
        sys.exit(f"storeserver: {getattr(exc, 'message', exc)}")
    print(json.dumps(out) if args.json else out["code"])
    return 0


def cmd_add_staff(args: argparse.Namespace) -> int:
    pin = args.pin
    if pin is None:
        pin = getpass.getpass(f"PIN for {args.id} (4-12 digits): ")
        if getpass.getpass("again: ") != pin:
            sys.exit("storeserver: the PINs differ; nothing was changed")
    store = _store(args)
    try:
        with store.db.transaction() as conn:
            staff.add_staff(conn, store.clock, args.id, args.name, pin, replace=args.replace)
    except ApiError as exc:
        sys.exit(f"storeserver: {exc.message}")
    print(f"staff {args.id} ({args.name}) {'updated' if args.replace else 'added'}")
    return 0


def cmd_staff_badge(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        with store.db.transaction() as conn:
            out = staff.issue_badge(conn, store.clock, store.signing_key, args.staff_id, args.days)
    except ApiError as exc:
        sys.exit(f"storeserver: {exc.message}")
    print(json.dumps(out) if args.json else out["code"])
    return 0


def cmd_disable_staff(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        with store.db.transaction() as conn:
            staff.set_active(conn, args.staff_id, False)
    except ApiError as exc:
        sys.exit(f"storeserver: {exc.message}")
    print(f"staff {args.staff_id} disabled: their badges and PIN no longer work online")
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
        p.set_defaults(func=func)
        return p

    p = command("serve", cmd_serve, "serve the HTTP API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
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
        "--offline-member-points", type=_natural, default=defaults.offline_member_daily_points,
        help="points one member may redeem offline per store day (kiosks receive it)",
    )  # fmt: skip
    p.add_argument(
        "--offline-kiosk-points", type=_natural, default=defaults.offline_kiosk_daily_points,
        help="points one kiosk may hand out offline per store day (kiosks receive it)",
    )  # fmt: skip
    p.add_argument(
        "--offline-max-hours", type=_natural, default=defaults.offline_max_hours,
        help="hours after a member code's expiry an offline redemption with it may be made; "
        "kiosks stop offline redemption this long into an outage (0: no offline redemption)",
    )  # fmt: skip
    p = command("seed-demo", cmd_seed_demo, "write the demo store and print its members")
    p.add_argument(
        "--kiosk", action="append", default=None, help="kiosk id to give compartments (repeatable)"
    )
    command("enroll-code", cmd_enroll_code, "print a one-time kiosk enrollment code (valid 24 h)")
    p = command("staff-token", cmd_staff_token, "print a token for a cashier or staff tool")
    p.add_argument("--name", default="staff")
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
    p.add_argument("--pin", help="4-12 digits (default: ask, without echo)")
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
        "stop a staff member's badges and PIN (kiosks drop their cached PIN when online)",
    )
    p.add_argument("staff_id")
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
