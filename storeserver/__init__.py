"""Reference store server: members, points ledger, catalog, holds, payments, wheel, kiosks.

It is the contract (docs/api/openapi.json), the demo's back end and the peer of every
integration test of the kiosk.
"""
