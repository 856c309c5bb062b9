"""The kiosk's commands: ``run`` (systemd's), ``selftest``, ``doctor`` and ``logs`` (the technician's)."""
