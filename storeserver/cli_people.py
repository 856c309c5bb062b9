"""``storeserver`` commands for the people and tools of a store: accounts and their tokens
(add-account, token, tokens, revoke-token) and staff who restock kiosks (add-staff,
staff-badge, disable-staff, unlock-staff, revoke-badges)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from . import accounts, embedded, staff, staff_revocation
from .cli_base import fail, writing
from .cli_base import open_store as _store
from .errors import ApiError


def cmd_add_account(args: argparse.Namespace) -> int:
    with writing(args) as (store, conn):
        accounts.add_account(conn, store.clock, args.id, args.role, args.member)
        token_id, token = accounts.issue_token(conn, store.clock, args.id, args.days)
    print(f"account {args.id} ({args.role}) added; token {token_id}, valid {args.days} days:",
          file=sys.stderr)  # fmt: skip
    print(token)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        token_id, token = embedded.account_token(store, args.account, args.days)
    except ApiError as exc:
        fail(exc)
    print(f"token {token_id} for {args.account}, valid {args.days} days:", file=sys.stderr)
    print(token)
    return 0


def cmd_tokens(args: argparse.Namespace) -> int:
    store = _store(args)
    now = store.clock.now()
    print("token\taccount\trole\tcreated\texpires\tstate")
    for t in accounts.list_tokens(store.db.connection()):
        print(f"{t.id}\t{t.account_id}\t{t.role}\t{t.created_at}\t{t.expires_at}\t{t.state(now)}")
    return 0


def cmd_revoke_token(args: argparse.Namespace) -> int:
    with writing(args) as (store, conn):
        n = accounts.revoke(conn, store.clock, args.token_id, args.account)
    print(f"revoked {n} token(s); they stop working with the next request")
    return 0


def cmd_add_staff(args: argparse.Namespace) -> int:
    pin = args.pin
    if pin is None:
        pin = getpass.getpass(f"PIN for {args.id} (6-12 digits): ")
        if getpass.getpass("again: ") != pin:
            sys.exit("storeserver: the PINs differ; nothing was changed")
    with writing(args) as (store, conn):
        staff.add_staff(conn, store.clock, args.id, args.name, pin, replace=args.replace)
    print(f"staff {args.id} ({args.name}) {'updated' if args.replace else 'added'}")
    return 0


def cmd_staff_badge(args: argparse.Namespace) -> int:
    with writing(args) as (store, conn):
        out = staff.issue_badge(conn, store.clock, store.signing_key, args.staff_id, args.days)
    print(json.dumps(out) if args.json else out["code"])
    return 0


def cmd_disable_staff(args: argparse.Namespace) -> int:
    with writing(args) as (_, conn):
        staff.set_active(conn, args.staff_id, False)
    print(
        f"staff {args.staff_id} disabled: their badges and PIN no longer work online, nor "
        "offline once a kiosk has synced (its next heartbeat)"
    )
    return 0


def cmd_unlock_staff(args: argparse.Namespace) -> int:
    with writing(args) as (_, conn):
        staff.unlock(conn, args.staff_id)
    print(f"staff {args.staff_id} unlocked: wrong-PIN counts and locks cleared")
    return 0


def cmd_revoke_badges(args: argparse.Namespace) -> int:
    with writing(args) as (store, conn):
        staff_revocation.revoke_badges(conn, store.clock, args.staff_id)
    print(
        f"badges of staff {args.staff_id} printed until now are revoked (online at once, offline "
        f"after each kiosk's next heartbeat): print a new one with 'staff-badge {args.staff_id}'"
    )
    return 0
