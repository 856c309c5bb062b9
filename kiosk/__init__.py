"""Firmware of the self-service loyalty kiosk."""

__version__ = "0.1.0"
