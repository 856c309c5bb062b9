"""The arm64 proof (``scripts/pi-check.sh``): a Debian bookworm arm64 root under qemu, the kiosk
installed into it from the release artifact as a technician would, and the kiosk's commands,
the demo's tour and a fast test subset run inside it under emulation.

``pipconf`` carries the host's pip configuration into the root, ``wheels`` tells what was
installed (wheel tags, what pip built from source), ``report`` the table of steps,
``rootfs`` builds the root, mounts into it and runs commands in it, ``__main__`` the steps.
The pure parts (pipconf, wheels, report, the mirror lookup) are tested in
tests/provisioning/test_pi_check.py; the whole run is too slow for CI (docs: README.md,
"The arm64 proof").
"""
