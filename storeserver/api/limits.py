"""The request body limit: a pure ASGI middleware that counts the bytes it receives.

A body over the limit is answered 413 ``body_too_large`` before anything parses it, whatever
``Content-Length`` says (a declared length over the limit is refused without reading; a short
declared length, or a chunked body, is counted as it arrives). The body is read here, at most
the limit, and handed on to the application unchanged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 64 * 1024
# The one route that may need more: a kiosk uploads its outbox 50 events at a time, each at
# most 2 KB of payload (kiosk/storage/outbox.py), about 110 KB at the very worst. A batch over
# the limit is not lost: the kiosk splits a 413'd batch in halves (outbox_delivery.py).
PER_PATH_BYTES = {"/v1/kiosks/events": 128 * 1024}


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` (``per_path``: other limits for exact paths)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = MAX_BODY_BYTES,
        per_path: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.per_path = dict(PER_PATH_BYTES if per_path is None else per_path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope.get("path", ""), self.max_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(send, limit, scope)
            return
        try:
            body = await _read(receive, limit)
        except BodyTooLarge:
            await _too_large(send, limit, scope)
            return
        await self.app(scope, _replay(body, receive), send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _read(receive: Receive, limit: int) -> list[Message]:
    """The request's body messages, counted; BodyTooLarge once they pass ``limit``."""
    messages, size = [], 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages  # a disconnect: the application sees it as it would have
        size += len(message.get("body", b""))
        if size > limit:
            raise BodyTooLarge
        if not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()  # after the body: the disconnect, when it comes

    return replay


async def _too_large(send: Send, limit: int, scope: Scope) -> None:
    log.warning(
        "refused a request body over %d bytes: %s %s", limit, scope.get("method"), scope.get("path")
    )
    body = json.dumps(
        {
            "error": "body_too_large",
            "message": f"the request body is over {limit // 1024} KB: send less "
            "(a kiosk uploads its outbox in smaller batches)",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
