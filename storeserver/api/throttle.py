"""Rate limits on the routes a stolen or runaway token could hammer: a dependency per route
group (``storeserver/ratelimit.py``), answering 429 ``rate_limited`` with ``Retry-After``."""

from __future__ import annotations

import math

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from ..accounts import token_sha256
from ..errors import TooManyRequests
from ..models import ErrorBody
from .auth import bearer, store_of

RATE_LIMITED: dict[int | str, dict] = {
    429: {
        "model": ErrorBody,
        "description": "rate_limited: too many requests of this kind from this token",
        "headers": {
            "Retry-After": {
                "description": "seconds until the next request is accepted",
                "schema": {"type": "integer"},
            }
        },
    }
}


class RateLimited:
    """Dependency: one request of ``group`` for the caller's token, or 429. It sits after the
    route's role check, so a refused token never gets (or evicts) a bucket."""

    def __init__(self, group: str) -> None:
        self.group = group

    def __call__(
        self,
        request: Request,
        creds: HTTPAuthorizationCredentials | None = Depends(bearer),
    ) -> None:
        token = creds.credentials if creds is not None else ""
        key = token_sha256(token)  # the token itself is never kept
        wait = store_of(request).rate_limiter.take(key, self.group)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise TooManyRequests(
                "rate_limited",
                f"too many {self.group} requests from this token: try again in {seconds} s "
                "(a kiosk never needs this many: check it for a loop or a stolen token)",
                seconds,
            )
