"""kiosk-provision: set up a kiosk (or an image folder) idempotently; docs/provisioning.md."""
