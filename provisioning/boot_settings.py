"""What the boot step writes for a display and a rotation: the closed set of displays, the
config.txt block, the kernel arguments and Kivy's settings (provisioning/boot.py writes them).

Why each setting is in the layer it is in: docs/provisioning.md, "The Pi's boot settings".
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from provisioning import boot_edit
from provisioning.target import ProvisionError

ROTATIONS = (0, 90, 180, 270)


class Display(enum.Enum):
    """The displays a kiosk may have: (DRM connector, mode for ``video=``, description)."""

    DSI_7INCH = ("dsi-7inch", "DSI-1", "800x480@60", 'Raspberry Pi Touch Display 7" (DSI)')
    HDMI_800X480 = ("hdmi-800x480", "HDMI-A-1", "800x480M@60D", "HDMI panel 800x480, USB touch")
    HDMI_1024X600 = ("hdmi-1024x600", "HDMI-A-1", "1024x600M@60D", "HDMI panel 1024x600, USB touch")
    HDMI_1280X800 = ("hdmi-1280x800", "HDMI-A-1", "1280x800M@60D", "HDMI panel 1280x800, USB touch")
    HDMI_1920X1080 = (
        "hdmi-1920x1080",
        "HDMI-A-1",
        "1920x1080M@60D",
        "HDMI screen 1080p, USB touch",
    )

    def __init__(self, kind: str, connector: str, mode: str, title: str) -> None:
        self.kind, self.connector, self.mode, self.title = kind, connector, mode, title

    @classmethod
    def named(cls, kind: str) -> Display:
        for display in cls:
            if display.kind == kind:
                return display
        raise ValueError(f"unknown display {kind!r}: choose one of {', '.join(display_kinds())}")


def display_kinds() -> list[str]:
    return [d.kind for d in Display]


# Every connector a Display names: a video= for one of them that is not the kiosk's goes.
MANAGED_CONNECTORS = tuple(dict.fromkeys(d.connector for d in Display))


@dataclass(frozen=True)
class BootSettings:
    """What the step makes of the boot files; ``display`` None: leave the display alone."""

    display: Display | None = None
    rotate: int = 0

    def label(self) -> str:
        if self.display is None:
            return "display not set (--display)"
        return f"display {self.display.kind}, rotated {self.rotate}"

    def settings_line(self) -> list[str]:
        if self.display is None:
            return []
        return [f"{boot_edit.SETTINGS_PREFIX} display={self.display.kind} rotate={self.rotate}"]

    def config_block(self, kms_already: bool) -> list[str]:
        return [
            f"{boot_edit.BEGIN} (changed by kiosk-provision; docs/provisioning.md)",
            *self.settings_line(),
            "[all]",  # the image's last section may be [cm4] or [pi5]: ours is for every model
            *([] if kms_already else ["dtoverlay=vc4-kms-v3d"]),
            "display_auto_detect=1",
            "camera_auto_detect=1",
            "dtparam=watchdog=on",
            boot_edit.END,
        ]

    def cmdline_args(self) -> list[str]:
        args = ["consoleblank=0"]
        if self.display is not None:
            turn = f",rotate={self.rotate}" if self.rotate else ""
            args.append(f"video={self.display.connector}:{self.display.mode}{turn}")
        return args

    def dropped_args(self) -> list[str]:
        if self.display is None:
            return []
        return [f"video={c}" for c in MANAGED_CONNECTORS if c != self.display.connector]

    def kivy_values(self) -> dict[str, dict[str, str]]:
        return {
            "graphics": {"rotation": str(self.rotate)},
            # touches from the panel's multitouch device (mtdev); SDL's mouse events, which
            # mirror the same touches, are ignored while a touch provider is active
            "input": {
                "mouse": "mouse,disable_on_activity",
                "%(name)s": "probesysfs,provider=mtdev",
            },
        }


def recorded_settings(config_text: str, where: str) -> BootSettings:
    """The settings an earlier run recorded in config.txt's managed block (or none)."""
    for line in boot_edit.block_lines(config_text, where):
        if line.startswith(boot_edit.SETTINGS_PREFIX):
            found = dict(re.findall(r"(\w+)=(\S+)", line[len(boot_edit.SETTINGS_PREFIX) :]))
            try:
                rotate = int(found.get("rotate", "0"))
                if rotate not in ROTATIONS:
                    raise ValueError(f"rotate={rotate} is not one of 0, 90, 180, 270")
                return BootSettings(Display.named(found.get("display", "")), rotate)
            except ValueError as exc:
                raise ProvisionError(
                    f"{where}: the line '{line}' is not understood ({exc}): pass --display "
                    "and --rotate again, or correct that line"
                ) from None
    return BootSettings()
