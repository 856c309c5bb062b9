"""The door alarm's buzzer (drivers/indicator.py): one GPIO on gpiozero, or nothing at all.

Pin levels are read from gpiozero's MockFactory histories (every level the pin ever had)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from drivers.indicator import GpioAlarmOutput, SilentAlarmOutput, make_alarm_output
from kiosk.config import AlarmSection
from tests.drivers.test_locker import levels

BUZZER = 12


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory(pin_class=MockPin)
    yield f
    f.close()
    f.reset()


def test_no_pin_configured_gives_a_silent_output_that_claims_no_pin(factory):
    output = make_alarm_output(AlarmSection(), locker_kind="gpio", pin_factory=factory)
    assert isinstance(output, SilentAlarmOutput)
    output.set(True)
    assert output.on and factory.pins == {}
    output.close()
    assert not output.on


@pytest.mark.parametrize(("active_high", "sounding"), [(True, True), (False, False)])
def test_the_buzzer_sounds_while_on_and_is_silent_before_and_after(factory, active_high, sounding):
    cfg = AlarmSection(buzzer_pin=BUZZER, active_high=active_high)
    output = make_alarm_output(cfg, locker_kind="gpio", pin_factory=factory)
    assert isinstance(output, GpioAlarmOutput)
    pin = factory.pin(BUZZER)
    assert levels(pin)[-1] is not sounding  # claimed silent
    pin.clear_states()  # (the mock pin's level before it was an output came first)

    output.set(True)
    output.set(True)  # repeating a state does not toggle the line
    assert levels(pin)[-1] is sounding and output.on
    output.set(False)
    assert levels(pin)[-1] is not sounding and not output.on
    output.set(True)
    output.close()  # silent on the way out, and the pin released
    output.close()
    silent = not sounding
    assert levels(pin) == [silent, sounding, silent, sounding, silent]  # [0]: the cleared level
    output.set(True)  # after close: ignored, nothing raised
    assert levels(pin)[-1] is silent


def test_a_simulated_locker_gets_a_simulated_buzzer():
    output = make_alarm_output(AlarmSection(buzzer_pin=BUZZER), locker_kind="sim")
    try:
        output.set(True)
        assert output.on
    finally:
        output.close()
