"""Display orientation: the container's display matrix as a lossless array transform.

Phones record in sensor orientation and store how to show the video as a
display matrix (MP4/MOV ``tkhd``, exported by libavformat as
``AV_PKT_DATA_DISPLAYMATRIX`` and attached to decoded frames). PDQ hashes
what a viewer sees, so every backend returns frames as the ffmpeg command
line shows them (its ``autorotate``): rotated by multiples of 90 degrees,
mirrored where the matrix mirrors. Matrices at other angles are snapped to
the nearest multiple of 90 degrees.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

__all__ = ["IDENTITY", "Orientation", "orientation_from_matrix"]


@dataclass(frozen=True)
class Orientation:
    """Displayed (x', y') from stored (x, y), in image coordinates (y down):
    ``x' = a*x + c*y`` and ``y' = b*x + d*y`` with a, b, c, d in {-1, 0, 1}
    (FFmpeg's display-matrix formula; checked against the ffmpeg command
    line on every rotation and mirror by tests/test_realworld_media.py)."""

    a: int = 1
    b: int = 0
    c: int = 0
    d: int = 1

    @property
    def transposes(self) -> bool:
        """True when the displayed frame is the stored one on its side (90/270)."""
        return self.a == 0

    @property
    def mirrored(self) -> bool:
        return self.a * self.d - self.b * self.c < 0

    @property
    def is_identity(self) -> bool:
        return self == IDENTITY

    def describe(self) -> str:
        if self.is_identity:
            return "none"
        # Clockwise angle of the rotation part (after any horizontal mirror).
        a, b = (-self.a, -self.b) if self.mirrored else (self.a, self.b)
        angle = {(1, 0): 0, (0, 1): 90, (-1, 0): 180, (0, -1): 270}[(a, b)]
        return f"rotate {angle}" + (" + mirror" if self.mirrored else "")

    def stored_size(self, width: int, height: int) -> tuple[int, int]:
        """(w, h) of stored frames that display as width x height."""
        return (height, width) if self.transposes else (width, height)

    def displayed_size(self, width: int, height: int) -> tuple[int, int]:
        """(w, h) shown for stored frames of width x height."""
        return (height, width) if self.transposes else (width, height)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """The displayed frame(s) of stored rgb [..., H, W, C] (a view when possible)."""
        if self.is_identity:
            return rgb
        y_axis, x_axis = rgb.ndim - 3, rgb.ndim - 2
        if not self.transposes:
            out = rgb
            if self.a < 0:
                out = np.flip(out, axis=x_axis)
            if self.d < 0:
                out = np.flip(out, axis=y_axis)
            return out
        out = np.swapaxes(rgb, y_axis, x_axis)  # out[x, y] = rgb[y, x]: rows are now stored columns
        if self.b < 0:
            out = np.flip(out, axis=y_axis)  # y' = b*x
        if self.c < 0:
            out = np.flip(out, axis=x_axis)  # x' = c*y
        return out


IDENTITY = Orientation()


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def orientation_from_matrix(data: bytes | None) -> Orientation:
    """The orientation of a 36-byte display matrix (nine native int32, 16.16
    fixed point for the 2x2 part, FFmpeg's layout); IDENTITY for None or bad data."""
    if data is None or len(data) != 36:
        return IDENTITY
    m = struct.unpack("=9i", bytes(data))
    a, b, c, d = m[0], m[1], m[3], m[4]  # row-major [[a b u] [c d v] [tx ty w]]
    if abs(a) + abs(d) >= abs(b) + abs(c):
        return Orientation(_sign(a) or 1, 0, 0, _sign(d) or 1)
    return Orientation(0, _sign(b) or 1, _sign(c) or 1, 0)
