"""The ``storeserver migrate`` command (registered by storeserver/cli.py)."""

from __future__ import annotations

import argparse
import sys

from ..errors import SchemaError


def cmd_migrate(args: argparse.Namespace) -> int:
    from .runner import migrate  # SQLAlchemy and Alembic are imported only to migrate

    try:
        outcome = migrate(args.db, say=print)
    except SchemaError as exc:
        print(f"storeserver migrate: {exc}", file=sys.stderr)
        return exc.exit_code
    if not outcome.applied:
        print(f"database {args.db} is up to date (schema revision {outcome.after})")
    return 0
