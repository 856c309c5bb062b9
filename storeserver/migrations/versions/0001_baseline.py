"""baseline: the schema of the releases before migrations

Revision ID: 0001
Revises:
Create Date: 2026-12-06

On an empty file: the baseline tables (``baseline.sql``). On a file made by an older release
(no ``alembic_version``): the same, then the upgrades those releases ran at every open
(``legacy.py``), then a check that the file now holds the baseline schema.
"""

from __future__ import annotations

from alembic import op

from storeserver.errors import MigrationFailed
from storeserver.migrations import legacy

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind().connection.driver_connection  # the sqlite3 connection, in the txn
    legacy.bring_to_baseline(conn)
    legacy.check_baseline(conn)


def downgrade() -> None:
    raise MigrationFailed(
        "there is nothing before the baseline: restore the backup storeserver migrate made "
        "(<db>.pre-<rev>.bak) instead"
    )
