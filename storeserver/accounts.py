"""Accounts of people and tools that call the API, each with one role, and their tokens.

A token is random, stored only as its SHA-256, has an expiry and can be revoked; each has a
short public id (``tok_...``) to list and revoke it by. Roles (docs/security.md):

- ``cashier``: earns points on purchases and top-ups, registers members, takes coupons;
- ``manager``: everything of the store (members, manual points, kiosks and their alerts);
- ``admin``: the chain: what a manager does, plus technician codes;
- ``technician``: kiosks' state and technician codes;
- ``member-app``: mints member codes for one member's own app, nothing else.

Kiosks are not accounts: they enroll (kiosks.py) and act as the ``kiosk`` role.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import logging
import re
import secrets
import sqlite3
from dataclasses import dataclass

from .clock import Clock, iso, parse_iso
from .errors import BadRequest, Conflict, NotFound, Unauthorized

log = logging.getLogger(__name__)

ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
DEFAULT_TOKEN_DAYS = 90
MAX_TOKEN_DAYS = 366


class AccountRole(enum.StrEnum):
    CASHIER = "cashier"
    MANAGER = "manager"
    ADMIN = "admin"
    TECHNICIAN = "technician"
    MEMBER_APP = "member-app"


@dataclass(frozen=True)
class Account:
    id: str
    role: AccountRole
    member_id: str | None  # member-app: the one member whose codes it may mint


@dataclass(frozen=True)
class TokenInfo:
    id: str
    account_id: str
    role: AccountRole
    created_at: str
    expires_at: str
    revoked_at: str | None

    def state(self, now: dt.datetime) -> str:
        if self.revoked_at:
            return "revoked"
        return "expired" if parse_iso(self.expires_at) <= now else "active"


def token_sha256(token: str) -> str:
    """How every bearer secret is kept (account and kiosk tokens, member sessions, enrollment
    codes): its SHA-256, never the secret itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def add_account(
    conn: sqlite3.Connection,
    clock: Clock,
    account_id: str,
    role: str,
    member_id: str | None = None,
) -> Account:
    """A new account; a member-app account names its member, no other role does."""
    if not ACCOUNT_ID.match(account_id):
        raise BadRequest(
            "invalid_account_id",
            f"account id must be 1-32 letters, digits, '_', '.' or '-' (pattern {ACCOUNT_ID.pattern})",
        )
    try:
        account_role = AccountRole(role)
    except ValueError:
        allowed = ", ".join(r.value for r in AccountRole)
        raise BadRequest("invalid_role", f"role must be one of {allowed}") from None
    if (account_role is AccountRole.MEMBER_APP) != (member_id is not None):
        raise BadRequest(
            "invalid_member_binding",
            "a member-app account needs --member MEMBER_ID; no other role takes one",
        )
    if (
        member_id is not None
        and not conn.execute("SELECT 1 FROM members WHERE id = ?", (member_id,)).fetchone()
    ):
        raise NotFound("unknown_member", "no such member: check the member id")
    if conn.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone():
        raise Conflict("account_exists", f"account {account_id} exists already")
    conn.execute(
        "INSERT INTO accounts(id, role, member_id, created_at) VALUES (?,?,?,?)",
        (account_id, account_role.value, member_id, iso(clock.now())),
    )
    log.info("account %s added with role %s", account_id, account_role.value)
    return Account(account_id, account_role, member_id)


def issue_token(
    conn: sqlite3.Connection, clock: Clock, account_id: str, days: int = DEFAULT_TOKEN_DAYS
) -> tuple[str, str]:
    """A new token for an account: returns (token id, token). The token is shown only once."""
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise BadRequest("invalid_days", f"a token is valid 1 to {MAX_TOKEN_DAYS} days")
    row = conn.execute("SELECT active FROM accounts WHERE id = ?", (account_id,)).fetchone()
    if row is None:
        raise NotFound("unknown_account", f"no account {account_id}: add it with add-account")
    if not row["active"]:
        raise Conflict("account_disabled", f"account {account_id} is disabled")
    token = "tok_" + secrets.token_urlsafe(32)
    token_id = "tok_" + secrets.token_hex(4)
    now = clock.now()
    conn.execute(
        "INSERT INTO account_tokens(id, token_sha256, account_id, created_at, expires_at) "
        "VALUES (?,?,?,?,?)",
        (token_id, token_sha256(token), account_id, iso(now), iso(now + dt.timedelta(days=days))),
    )
    log.info("token %s issued for account %s, valid %d days", token_id, account_id, days)
    return token_id, token


def list_tokens(conn: sqlite3.Connection) -> list[TokenInfo]:
    rows = conn.execute(
        "SELECT t.id, t.account_id, a.role, t.created_at, t.expires_at, t.revoked_at "
        "FROM account_tokens t JOIN accounts a ON a.id = t.account_id ORDER BY t.created_at, t.id"
    ).fetchall()
    return [
        TokenInfo(
            r["id"],
            r["account_id"],
            AccountRole(r["role"]),
            r["created_at"],
            r["expires_at"],
            r["revoked_at"],
        )
        for r in rows
    ]


def revoke(
    conn: sqlite3.Connection, clock: Clock, token_id: str | None, account_id: str | None
) -> int:
    """Revoke one token, or every token of an account; returns how many were revoked now."""
    if (token_id is None) == (account_id is None):
        raise BadRequest("invalid_revoke", "name a token id or an account, not both")
    column, value = ("id", token_id) if token_id else ("account_id", account_id)
    found = conn.execute(
        f"SELECT COUNT(*) FROM account_tokens WHERE {column} = ?", (value,)
    ).fetchone()[0]
    if not found:
        raise NotFound("unknown_token", f"no token with {column} {value}")
    revoked = conn.execute(
        f"UPDATE account_tokens SET revoked_at = ? WHERE {column} = ? AND revoked_at IS NULL",
        (iso(clock.now()), value),
    ).rowcount
    log.warning("revoked %d token(s) with %s %s", revoked, column, value)
    return revoked


def account_for_token(conn: sqlite3.Connection, clock: Clock, token: str) -> Account | None:
    """The account a token belongs to; None when it is no account token at all."""
    row = conn.execute(
        "SELECT a.id, a.role, a.member_id, a.active, t.expires_at, t.revoked_at "
        "FROM account_tokens t JOIN accounts a ON a.id = t.account_id WHERE t.token_sha256 = ?",
        (token_sha256(token),),
    ).fetchone()
    if row is None:
        return None
    if row["revoked_at"] is not None:
        raise Unauthorized("token_revoked", "this token was revoked: ask an admin for a new one")
    if parse_iso(row["expires_at"]) <= clock.now():
        raise Unauthorized("token_expired", "this token has expired: ask an admin for a new one")
    if not row["active"]:
        raise Unauthorized("account_disabled", "this account is disabled")
    return Account(row["id"], AccountRole(row["role"]), row["member_id"])
