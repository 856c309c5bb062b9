"""What every ``storeserver`` command needs: its settings and the store they open."""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import sys
from collections.abc import Iterator

from .errors import ApiError, SchemaError
from .notify import Notifier
from .payments import PaymentProvider
from .store import Store, StoreSettings


def settings_from(args: argparse.Namespace) -> StoreSettings:
    settings = StoreSettings(
        timezone=args.timezone, pictures_dir=args.pictures, signing_key_file=args.signing_key
    )
    if hasattr(args, "hold_expiry"):
        settings.hold_expiry_s = args.hold_expiry
        settings.payment_expiry_s = args.payment_expiry
        settings.member_session_s = args.member_session
    return settings


def open_store(
    args: argparse.Namespace,
    notifier: Notifier | None = None,
    settings: StoreSettings | None = None,
    provider: PaymentProvider | None = None,
) -> Store:
    try:
        return Store(
            args.db, notifier=notifier, settings=settings or settings_from(args), provider=provider
        )
    except ValueError as exc:
        sys.exit(f"storeserver: {exc}")
    except SchemaError as exc:  # behind: 'storeserver migrate'; ahead: a newer release's file
        print(f"storeserver: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


def fail(exc: ApiError) -> int:
    sys.exit(f"storeserver: {exc.message}")


@contextlib.contextmanager
def writing(args: argparse.Namespace) -> Iterator[tuple[Store, sqlite3.Connection]]:
    """The store and one write transaction of a command; a refusal exits with its message
    (and changes nothing: the transaction rolls back)."""
    store = open_store(args)
    try:
        with store.db.transaction() as conn:
            yield store, conn
    except ApiError as exc:
        fail(exc)
