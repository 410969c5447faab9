"""Unrelated content generators for false-positive benchmarks (issue #16).

Each generator draws frames of one family at time t for one seed, so the
distractor benchmark (``vscan.bench.bench_distractors``) can fill a bank
with thousands of entries in memory and write hundreds of unrelated query
clips and stills, including near-duplicate-looking families: fractal zooms
(every seed zooms into the same set), cellular automata (random soups that
all settle into the same kind of debris), plasma (sums of sines) and flat
gradients with a few shapes (low-detail frames), beside the textured pans of
``vscan.bench.scenes``.
"""

from __future__ import annotations

import numpy as np

from vscan.bench.scenes import _Renderer

__all__ = ["GENERATORS", "renderer"]

GENERATORS = ("texture", "fractal", "life", "plasma", "gradient")


def _palette(rng: np.random.Generator, n: int = 256) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    phase, freq = rng.uniform(0, 2 * np.pi, 3), rng.uniform(2, 7, 3)
    return (127.5 + 127.5 * np.sin(2 * np.pi * freq * t + phase)).astype(np.uint8)


class _Fractal:
    """A Mandelbrot zoom towards a boundary point chosen by the seed."""

    def __init__(self, seed: int, size: tuple[int, int]):
        rng = np.random.default_rng(seed)
        self.w, self.h = size
        # Points near the set's boundary: keep trying until one has a mixed neighbourhood.
        for _ in range(200):
            c = complex(rng.uniform(-2.0, 0.5), rng.uniform(-1.2, 1.2))
            if 8 < self._escape(np.array([c]), 64)[0] < 60:
                break
        self.centre, self.rate, self.start = c, rng.uniform(0.15, 0.35), rng.uniform(0.05, 0.4)
        self.palette = _palette(rng)

    @staticmethod
    def _escape(c: np.ndarray, limit: int) -> np.ndarray:
        z = np.zeros_like(c)
        count = np.zeros(c.shape, np.int32)
        for _ in range(limit):
            live = np.abs(z) <= 2
            z[live] = z[live] ** 2 + c[live]
            count += live
        return count

    def __call__(self, t: float) -> np.ndarray:
        # From a depth of the seed's own (every zoom that starts at the whole set
        # shows the same picture for its first seconds: true near-duplicates).
        span = self.start * np.exp(-self.rate * t)
        xs = np.linspace(-span, span, self.w) * self.w / self.h
        ys = np.linspace(-span, span, self.h)
        c = self.centre + xs[None, :] + 1j * ys[:, None]
        return self.palette[(self._escape(c, 64) * 5) % 256]


class _Life:
    """Conway's life from a random soup, drawn as coloured cells (one generation per 1/8 s)."""

    def __init__(self, seed: int, size: tuple[int, int]):
        rng = np.random.default_rng(seed)
        self.w, self.h = size
        self.cell = max(2, min(self.w, self.h) // 36)
        self.grid = rng.random((self.h // self.cell + 1, self.w // self.cell + 1)) < rng.uniform(0.2, 0.45)
        self.gen, self.colours = 0, _palette(rng, 2)
        self.history = [self.grid]

    def _step(self, g: np.ndarray) -> np.ndarray:
        n = sum(np.roll(np.roll(g, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)
        return (n == 3) | (g & (n == 2))

    def __call__(self, t: float) -> np.ndarray:
        gen = int(t * 8)
        while len(self.history) <= gen:
            self.history.append(self._step(self.history[-1]))
        g = self.history[gen].repeat(self.cell, 0).repeat(self.cell, 1)[: self.h, : self.w]
        return self.colours[g.astype(np.int64)]


class _Plasma:
    def __init__(self, seed: int, size: tuple[int, int]):
        rng = np.random.default_rng(seed)
        self.w, self.h = size
        self.k = rng.uniform(2, 12, (4, 2))
        self.speed = rng.uniform(0.3, 1.5, 4)
        self.palette = _palette(rng)

    def __call__(self, t: float) -> np.ndarray:
        y, x = np.mgrid[0 : self.h, 0 : self.w] / float(max(self.w, self.h))
        v = sum(np.sin(2 * np.pi * (k[0] * x + k[1] * y) + s * t) for k, s in zip(self.k, self.speed))
        return self.palette[((v + 4) / 8 * 255).astype(np.int64) % 256]


class _Gradient:
    """A slow linear gradient with two drifting flat shapes: low-detail frames."""

    def __init__(self, seed: int, size: tuple[int, int]):
        rng = np.random.default_rng(seed)
        self.w, self.h = size
        self.a, self.b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        self.angle, self.spin = rng.uniform(0, 2 * np.pi), rng.uniform(-0.1, 0.1)
        self.shapes = [(rng.uniform(0, 1, 2), rng.uniform(-0.05, 0.05, 2), rng.uniform(0.1, 0.3), rng.integers(0, 256, 3)) for _ in range(2)]

    def __call__(self, t: float) -> np.ndarray:
        y, x = np.mgrid[0 : self.h, 0 : self.w]
        a = self.angle + self.spin * t
        s = ((x / self.w - 0.5) * np.cos(a) + (y / self.h - 0.5) * np.sin(a) + 0.75) / 1.5
        img = (self.a[None, None] * (1 - s[..., None]) + self.b[None, None] * s[..., None]).astype(np.uint8)
        for (p, v, r, colour) in self.shapes:
            cy, cx = (p + v * t) % 1.0
            mask = (y / self.h - cy) ** 2 + (x / self.w - cx) ** 2 < r**2
            img[mask] = colour
        return img


def renderer(kind: str, seed: int, size: tuple[int, int], seconds: float = 8.0):
    """A function t -> uint8 [H, W, 3] frame of generator ``kind`` (size is (width, height))."""
    if kind == "texture":
        return _Renderer(seed=seed, seconds=seconds, size=size, scenes=max(1, int(seconds // 5)))
    cls = {"fractal": _Fractal, "life": _Life, "plasma": _Plasma, "gradient": _Gradient}.get(kind)
    if cls is None:
        raise ValueError(f"Invalid generator ({kind!r}). Supported values are {list(GENERATORS)}.")
    return cls(seed, size)
