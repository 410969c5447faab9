"""Synthetic scenes: seeded abstract textures (sinusoids, blurred noise, shapes) that pan and zoom.

Content is a function of *time*, not of frame index, so the same seed at
25 fps and at 30 fps shows the same picture at the same second; tests of
timestamp-based sampling rely on that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["render_frame"]


def _blur_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth noise in [0, 1]: a coarse random grid upsampled bilinearly."""
    gh, gw = max(2, h // cells), max(2, w // cells)
    grid = rng.random((gh + 1, gw + 1))
    ys = np.linspace(0, gh, h, endpoint=False)
    xs = np.linspace(0, gw, w, endpoint=False)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    a = grid[y0][:, x0]
    b = grid[y0][:, x0 + 1]
    c = grid[y0 + 1][:, x0]
    d = grid[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A strongly structured RGB texture, uint8 [h, w, 3]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.zeros((h, w, 3))
    for ch in range(3):
        acc = np.zeros((h, w))
        for _ in range(4):
            period = rng.uniform(20, 160)
            theta = rng.uniform(0, np.pi)
            phase = rng.uniform(0, 2 * np.pi)
            proj = xx * np.cos(theta) + yy * np.sin(theta)
            acc += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * proj / period + phase)
        acc = (acc - acc.min()) / max(np.ptp(acc), 1e-9)
        out[..., ch] = 0.6 * acc + 0.4 * _blur_noise(rng, h, w, int(rng.integers(12, 48)))
    # Solid shapes give hard edges, so perceptual hashes get high quality.
    for _ in range(int(rng.integers(4, 9))):
        colour = rng.random(3)
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = rng.uniform(0.05, 0.2) * min(h, w)
        if rng.random() < 0.5:
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        else:
            mask = (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r * rng.uniform(0.5, 2))
        out[mask] = colour
    return np.ascontiguousarray((out * 255).clip(0, 255).astype(np.uint8))


@dataclass(frozen=True)
class _Scene:
    canvas: np.ndarray  # uint8 [ch, cw, 3], larger than the frame
    velocity: tuple[float, float]  # pan, canvas pixels per second (y, x)
    zoom_rate: float  # relative zoom change per second


class _Renderer:
    """Draws frame content at time t for one seed."""

    def __init__(self, *, seed: int, seconds: float, size: tuple[int, int], scenes: int):
        if scenes < 1:
            raise ValueError(f"Invalid scenes ({scenes}). Supported values are >= 1.")
        width, height = size
        self.width, self.height = int(width), int(height)
        self.seconds = float(seconds)
        self.scene_seconds = self.seconds / scenes
        rng = np.random.default_rng(seed)
        self.scenes = []
        for _ in range(scenes):
            canvas = _texture(rng, int(self.height * 1.6), int(self.width * 1.6))
            speed = rng.uniform(0.02, 0.05) * self.width  # px/s: a few px per frame
            angle = rng.uniform(0, 2 * np.pi)
            self.scenes.append(
                _Scene(canvas, (speed * np.sin(angle), speed * np.cos(angle)),
                       rng.uniform(-0.04, 0.04))
            )  # fmt: skip

    def __call__(self, t: float) -> np.ndarray:
        k = min(int(t / self.scene_seconds), len(self.scenes) - 1) if self.scene_seconds > 0 else 0
        scene = self.scenes[k]
        local_t = t - k * self.scene_seconds
        ch, cw = scene.canvas.shape[:2]
        zoom = 1.0 + scene.zoom_rate * local_t  # >1 magnifies
        cy = ch / 2 + scene.velocity[0] * local_t
        cx = cw / 2 + scene.velocity[1] * local_t
        ys = cy + (np.arange(self.height) - self.height / 2) / zoom
        xs = cx + (np.arange(self.width) - self.width / 2) / zoom
        # Reflect at the canvas borders so long clips never run off the texture.
        ys = np.abs(np.mod(ys, 2 * (ch - 1)) - (ch - 1)).astype(np.intp)
        xs = np.abs(np.mod(xs, 2 * (cw - 1)) - (cw - 1)).astype(np.intp)
        return np.ascontiguousarray(scene.canvas[ys[:, None], xs[None, :]])


def render_frame(*, seed: int, t: float, seconds: float = 4.0, size=(320, 240), scenes: int = 2):
    """The RGB frame (uint8 [H, W, 3]) that make_clip with these arguments shows at t."""
    return _Renderer(seed=seed, seconds=seconds, size=size, scenes=scenes)(t)
