"""The camera's live picture: a small widget for the attract and technician screens.

It polls ``scanner.latest_frame()`` (the scanner thread's last frame) a few times a second on
the UI thread and uploads it into a texture; the scanner thread never touches the widget. It
polls only while ``active`` (its screen is shown), and shows nothing without a frame.
"""

from __future__ import annotations

from kivy.clock import Clock
from kivy.graphics.texture import Texture
from kivy.properties import BooleanProperty, NumericProperty, ObjectProperty
from kivy.uix.image import Image

PREVIEW_FPS = 5  # enough to aim a code; a 640x480 upload costs ~1 ms


class CameraPreview(Image):
    scanner = ObjectProperty(None, allownone=True)
    active = BooleanProperty(False)
    fps = NumericProperty(PREVIEW_FPS)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fit_mode = "contain"
        self._poll = None
        self._shown = None  # the frame on screen (the scanner replaces, never writes, frames)
        self.frames_shown = 0

    def on_active(self, _widget, active: bool) -> None:
        if active and self._poll is None:
            self._poll = Clock.schedule_interval(lambda _dt: self.update(), 1 / self.fps)
            self.update()
        elif not active and self._poll is not None:
            self._poll.cancel()
            self._poll = None

    def update(self) -> None:
        frame = self.scanner.latest_frame() if self.scanner is not None else None
        if frame is self._shown:
            return
        self._shown = frame
        if frame is None:
            self.texture, self.opacity = None, 0
            return
        height, width = frame.shape[:2]
        colorfmt = "luminance" if frame.ndim == 2 else "bgr"
        texture = self.texture
        if texture is None or texture.size != (width, height) or texture.colorfmt != colorfmt:
            texture = Texture.create(size=(width, height), colorfmt=colorfmt)
            texture.flip_vertical()  # camera rows run top to bottom, GL's bottom to top
        data = frame if frame.flags.c_contiguous else frame.copy()
        texture.blit_buffer(data.tobytes(), colorfmt=colorfmt, bufferfmt="ubyte")
        self.texture, self.opacity = texture, 1
        self.canvas.ask_update()
        self.frames_shown += 1
