"""Talking to the store server: the HTTP client (client.py: the public calls; calls.py: each
call's attempts, what a response means and the retries; transport.py: the session, retry
policy and key pinning; parse.py: reading the answers; refusals.py: error answers and transport
failures), the sync worker thread (worker.py) and the worker's heartbeat and clock-skew check
(heartbeat.py). See docs/kiosk-sync.md."""
