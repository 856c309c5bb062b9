"""Diagnostics: the technician's view of the kiosk after a verified technician code (kind T):
server latency, sync, devices, doors, journal, queued receipts, recent errors, versions and
config, and a self-test on the running devices. The flow is
``kiosk.services.diagnostics.DiagnosticsFlow``; this screen renders its ``TechState``."""

from __future__ import annotations

import datetime as dt

from kivy.clock import Clock
from kivy.properties import ObjectProperty
from kivy.utils import escape_markup

from kiosk.domain.payloads import PayloadKind
from kiosk.domain.receipts import DeviceCheck
from kiosk.screens.base import KioskScreen, load_kv
from kiosk.screens.preview import CameraPreview  # noqa: F401 - used in diagnostics.kv
from kiosk.services.diagnostics import Diagnostics, DiagnosticsFlow, TechState, TechStep
from kiosk.services.ui_state import Screen, UiState

load_kv(__file__)

RECENT_ERRORS = 8
_FAIL, _HEAD = "ff7766", "8fc1ff"


class DiagnosticsScreen(KioskScreen):
    preview = ObjectProperty(None, allownone=True)  # the camera: is it aimed, in focus?

    def __init__(self, *, flow: DiagnosticsFlow, **kwargs) -> None:
        self.flow = flow
        super().__init__(**kwargs)
        self.flow.subscribe(lambda _state: self.render())
        self._ticker = None

    def on_enter(self, *args) -> None:
        self.ids.preview.active = True  # the camera's picture: is it aimed, in focus?
        if self._ticker is None:
            self._ticker = Clock.schedule_interval(lambda _dt: self.flow.tick(), 1.0)

    def on_leave(self, *args) -> None:
        self.ids.preview.active = False
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    def refresh(self, state: UiState) -> None:
        routed = state.routed_code
        if state.screen is Screen.DIAGNOSTICS and routed and routed[0] is PayloadKind.TECHNICIAN:
            self.flow.begin(routed[1])
        self.render()

    # ---- rendering -------------------------------------------------------------------------
    def render(self) -> None:
        s: TechState = self.flow.state
        ids = self.ids
        ids.header.text = (
            self.t("diagnostics.technician", nonce=s.code_nonce)
            if s.code_nonce
            else self.t("diagnostics.title")
        )
        left = s.idle_left_s
        ids.idle.text = (
            "" if left is None else self.t("common.idle_logout", countdown=self.tr.countdown(left))
        )
        ready = s.step is TechStep.READY
        for name in ("selftest_button", "refresh_button"):
            ids[name].disabled = not ready or s.busy
            ids[name].opacity = 1 if ready else 0
        ids.info.text = self.report_text(s)

    def report_text(self, s: TechState) -> str:
        t = self.t
        if s.step is TechStep.REFUSED:
            return _color(t("diagnostics.refused", detail=s.refusal), _FAIL)
        lines: list[str] = []
        if s.busy:
            key = "diagnostics.selftest_running" if s.testing else "diagnostics.gathering"
            lines.append(_color(t(key), _HEAD))
        if s.checks:
            lines += _section(t("diagnostics.section_selftest"))
            lines += [self._check_line(c) for c in s.checks]
        if s.report is not None:
            lines += self._report_lines(s.report)
        return "\n".join(lines)

    def _check_line(self, check: DeviceCheck) -> str:
        word = self.t("diagnostics.pass" if check.ok else "diagnostics.fail")
        line = escape_markup(f"{word}  {check.name}: {check.detail}")
        return line if check.ok else _color(line, _FAIL, escaped=True)

    def _report_lines(self, r: Diagnostics) -> list[str]:
        t, out = self.t, []
        out += _section(t("diagnostics.section_server"))
        server = r.server
        if server.reachable:
            ms = f"{server.latency_ms:.0f}"
            out.append(
                _plain(t("diagnostics.server_ok", url=server.url, ms=ms, detail=server.detail))
            )
        else:
            out.append(
                _color(t("diagnostics.server_down", url=server.url, detail=server.detail), _FAIL)
            )
        if r.sync is None:
            out.append(_color(t("diagnostics.sync_none"), _FAIL))
        else:
            sync = r.sync
            skew = "?" if sync.clock_skew_s is None else f"{sync.clock_skew_s:+.1f} s"
            online = t("diagnostics.online" if sync.online else "diagnostics.offline")
            out.append(_plain(t("diagnostics.sync", online=online, outbox=sync.outbox_length,
                                alerts=sync.alerts, skew=skew)))  # fmt: skip
            if sync.last_error:
                out.append(_color(t("diagnostics.sync_error", detail=sync.last_error), _FAIL))
        out += _section(t("diagnostics.section_devices"))
        out.append(self._device("diagnostics.printer", r.printer))
        if r.camera is None:
            out.append(_plain(t("diagnostics.camera_none")))
        else:
            out.append(self._device("diagnostics.camera", r.camera))
        doors = []
        for d in r.doors:
            key = (
                "diagnostics.door_unreadable"
                if d.state is None
                else f"diagnostics.door_{d.state.value}"
            )
            doors.append(t(key, n=d.number))
        out.append(_plain(t("diagnostics.doors", doors=", ".join(doors))))
        numbers = ", ".join(map(str, r.flagged)) or t("diagnostics.none")
        flagged = t("diagnostics.flagged", numbers=numbers)
        out.append(_color(flagged, _FAIL) if r.flagged else _plain(flagged))
        out += _section(t("diagnostics.section_journal"))
        if r.safe_mode:
            out.append(_color(t("diagnostics.safe_mode", detail=r.safe_mode), _FAIL))
        if r.journal is not None:
            j = r.journal
            out.append(_plain(t("diagnostics.journal", records=j.records, log_bytes=j.log_bytes,
                                snapshot_bytes=j.snapshot_bytes, compactions=j.compactions)))  # fmt: skip
        queued = t("diagnostics.queued", count=r.queued_receipts)
        out.append(_color(queued, _FAIL) if r.queued_receipts else _plain(queued))
        out += _section(t("diagnostics.section_errors"))
        recent = r.errors[-RECENT_ERRORS:]
        for e in reversed(recent):
            at = dt.datetime.fromtimestamp(e.at).strftime("%m-%d %H:%M:%S")
            out.append(_color(f"{at} {e.level} {e.logger}: {e.message}", _FAIL))
        if not recent:
            out.append(_plain(t("diagnostics.none")))
        out += _section(t("diagnostics.section_versions"))
        out.append(_plain(", ".join(f"{v.name} {v.value}" for v in r.versions)))
        out += _section(t("diagnostics.section_config"))
        out += [_plain(f"{v.name}: {v.value}") for v in r.config]
        return out

    def _device(self, key: str, check: DeviceCheck) -> str:
        result = self.t("diagnostics.pass" if check.ok else "diagnostics.fail")
        line = self.t(key, result=result, detail=check.detail)
        return _plain(line) if check.ok else _color(line, _FAIL)


def _plain(text: str) -> str:
    return escape_markup(text)


def _color(text: str, color: str, *, escaped: bool = False) -> str:
    return f"[color={color}]{text if escaped else escape_markup(text)}[/color]"


def _section(title: str) -> list[str]:
    return ["", f"[b][color={_HEAD}]{escape_markup(title)}[/color][/b]"]
