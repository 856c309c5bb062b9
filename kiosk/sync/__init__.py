"""Talking to the store server: the HTTP client (client.py, reading its answers in parse.py),
the sync worker thread (worker.py) and the worker's heartbeat and clock-skew check
(heartbeat.py). See docs/kiosk-sync.md."""
