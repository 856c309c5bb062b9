"""How slow this machine is, as one factor for every wait bound of the demo's tour and of the
tests: ``KIOSK_SLOW_FACTOR`` (a number >= 1, default 1), overridden by ``kiosk demo
--slow-factor N``. A bound of 15 s becomes 30 s at factor 2. Only how long the tour and the
tests wait for something to happen scales; the product's own timeouts do not (the demo rig's
configuration scales through ``RigTiming.scaled``). Plain Python: tests import it without Kivy."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

from kiosk.errors import KioskError

ENV_VAR = "KIOSK_SLOW_FACTOR"


def parse_slow_factor(text: str | float, source: str = ENV_VAR) -> float:
    """``text`` as a factor >= 1; ``source`` (the variable or the option) names it in the error."""
    try:
        factor = float(text)
    except (TypeError, ValueError):
        factor = math.nan
    if not (math.isfinite(factor) and factor >= 1):
        raise KioskError(
            f"{source}={text!r} is not a slow factor: use a number >= 1 (1 is a normal machine, "
            "e.g. 4 under qemu emulation); every wait bound of the tour and the tests is "
            "multiplied by it"
        )
    return factor


def slow_factor(
    option: str | float | None = None, environ: Mapping[str, str] | None = None
) -> float:
    """The factor: ``option`` (``--slow-factor``) if given, else ``KIOSK_SLOW_FACTOR``, else 1."""
    if option is not None:
        return parse_slow_factor(option, "--slow-factor")
    text = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    return parse_slow_factor(text) if text else 1.0


def scaled(seconds: float, factor: float | None = None) -> float:
    """A wait bound of ``seconds`` on a normal machine, on this one (``factor``, or the env's)."""
    return seconds * (slow_factor() if factor is None else factor)
