"""``storeserver`` command line: serve, seed-demo, enroll-code, member-code, staff-token."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from . import demo, kiosks, members, wheel
from .notify import LogNotifier, Notifier, WebhookNotifier
from .store import DEFAULT_TIMEZONE, Store, StoreSettings

DEFAULT_DB = "storeserver.db"


def _store(args: argparse.Namespace, notifier: Notifier | None = None) -> Store:
    settings = StoreSettings(timezone=args.timezone)
    if hasattr(args, "hold_expiry"):
        settings.hold_expiry_s = args.hold_expiry
        settings.payment_expiry_s = args.payment_expiry
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
    print(f"store server on {server.url} (database {args.db})", flush=True)
    server.serve_forever()
    return 0


def cmd_seed_demo(args: argparse.Namespace) -> int:
    store = _store(args)
    for m in demo.seed(store, args.kiosk):
        print(f"{m['id']}\t{m['tier']}\t{m['balance']} points\t{m['name']}")
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
