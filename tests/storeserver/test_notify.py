"""Notifications: the webhook notifier posts each event to a real HTTP endpoint on loopback."""

from __future__ import annotations

import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from storeserver.errors import ApiError
from storeserver.notify import Notification, WebhookNotifier


def test_webhook_posts_each_notification():
    received: queue.Queue = queue.Queue()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.put(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    notifier = WebhookNotifier(f"http://127.0.0.1:{server.server_address[1]}/hook", timeout_s=2)
    try:
        note = Notification("points_changed", "M0001", "2026-11-23T02:00:00+00:00", {"delta": -800})
        notifier.send(note)
        got = received.get(timeout=5)
        assert got == {
            "kind": "points_changed",
            "member_id": "M0001",
            "at": "2026-11-23T02:00:00+00:00",
            "data": {"delta": -800},
        }
    finally:
        notifier.close()
        server.shutdown()
        server.server_close()


def test_dead_webhook_never_blocks_the_sender():
    notifier = WebhookNotifier("http://127.0.0.1:9/unreachable", timeout_s=0.5, max_queue=2)
    try:
        for i in range(10):  # more than the queue holds: the extra ones are dropped, not waited for
            notifier.send(Notification("points_changed", f"M{i}", "2026-11-23T02:00:00+00:00"))
    finally:
        notifier.close()


def test_notifications_are_sent_only_after_commit(store, notifier):
    before = len(notifier.sent)
    with pytest.raises(ApiError), store.db.transaction() as conn:
        store.ledger.earn(conn, "M0001", 50, "purchase", "x")
        raise ApiError("boom", "rolled back")
    assert len(notifier.sent) == before
    with store.db.transaction() as conn:
        store.ledger.earn(conn, "M0001", 50, "purchase", "y")
    assert len(notifier.sent) == before + 1
