"""Randomised re-framing copies for the generalisation bench (vscan.bench.bench_generalise):
``pip`` (the clip at 25-75% of the frame width, any position, over moving video, a still or a
blur of itself), ``split`` (2 or 3 panes side by side or stacked), ``fill`` (a 9:16 canvas, blur
or a solid colour around the clip at any height) and ``captions`` (bands of 5-30% of the frame,
top, bottom or both); ``excerpt`` (``SEQUENCE_KINDS``: 2-5 s of the clip inside 20-40 s of other video,
vscan.bench.excerpts). Parameters are drawn per copy from its seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["GEOMETRY_KINDS", "SEQUENCE_KINDS", "geometry_edit", "make_geometry"]

GEOMETRY_KINDS = ("pip", "split", "fill", "captions")
#: Kinds that change the file's timeline, not its frames (drawn from seeds of their own, so adding them
#: leaves every other copy's seed, and a kept corpus, as it was).
SEQUENCE_KINDS = ("excerpt",)


def _fit(rgb: np.ndarray, w: int, h: int) -> np.ndarray:
    from vscan.bench.edits import _resize

    return _resize(rgb, max(2, w), max(2, h))


def _fill_crop(rgb: np.ndarray, w: int, h: int) -> np.ndarray:
    """Scale to cover w x h, centre-cropped."""
    sh, sw = rgb.shape[:2]
    s = max(w / sw, h / sh)
    big = _fit(rgb, int(np.ceil(sw * s)), int(np.ceil(sh * s)))
    y0, x0 = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return big[y0 : y0 + h, x0 : x0 + w]


def _place_fitted(canvas: np.ndarray, rgb: np.ndarray, x0: int, y0: int, w: int, h: int) -> None:
    """The whole picture inside the box (aspect kept), centred."""
    sh, sw = rgb.shape[:2]
    s = min(w / sw, h / sh)
    pw, ph = max(2, int(sw * s)), max(2, int(sh * s))
    canvas[y0 + (h - ph) // 2 : y0 + (h - ph) // 2 + ph, x0 + (w - pw) // 2 : x0 + (w - pw) // 2 + pw] = _fit(rgb, pw, ph)


def geometry_edit(kind: str, w: int, h: int, duration: float, rng: np.random.Generator, other_seed: int):
    """(frame function f(rgb, t) -> rgb, description) for one randomised re-framing of a w x h clip."""
    from vscan.bench.encoding import _even
    from vscan.bench.reframe import _blur, _other

    if kind == "pip":
        share = float(rng.uniform(0.25, 0.75))
        iw, ih = _even(w * share), _even(h * share)
        x0, y0 = int(rng.integers(0, w - iw + 1)), int(rng.integers(0, h - ih + 1))
        bg = str(rng.choice(["moving", "still", "self_blur"]))
        other = _other(other_seed, w, h, duration)
        still = other(0.0)

        def edit(f, t):
            canvas = (other(t) if bg == "moving" else still if bg == "still" else _blur(f, 12)).copy()
            canvas[y0 : y0 + ih, x0 : x0 + iw] = _fit(f, iw, ih)
            return canvas

        return edit, f"pip {share:.2f} at ({x0},{y0}) over {bg}"
    if kind == "split":
        panes, across = int(rng.integers(2, 4)), bool(rng.integers(2))
        mine, mode = int(rng.integers(panes)), str(rng.choice(["fit", "fill"]))
        others = [_other(other_seed + 17 * i, w, h, duration) for i in range(panes)]
        edges = np.linspace(0, w if across else h, panes + 1).astype(int)

        def edit(f, t):
            canvas = np.zeros_like(f)
            for i in range(panes):
                a, b = edges[i], edges[i + 1]
                bw, bh = (b - a, h) if across else (w, b - a)
                x0, y0 = (a, 0) if across else (0, a)
                pic = f if i == mine else others[i](t)
                if mode == "fill" or i != mine:
                    canvas[y0 : y0 + bh, x0 : x0 + bw] = _fill_crop(pic, bw, bh)
                else:
                    _place_fitted(canvas, pic, x0, y0, bw, bh)
            return canvas

        return edit, f"split {panes} {'across' if across else 'stacked'}, pane {mine}, {mode}"
    if kind == "fill":
        cw, ch = _even(h * 9 / 16 * 1.5), _even(h * 1.5)
        ph = _even(h * cw / w)
        y0 = int(rng.integers(0, ch - ph + 1))
        fill = str(rng.choice(["blur", "colour"]))
        colour = rng.integers(0, 256, 3).astype(np.uint8)

        def edit(f, t):
            canvas = _blur(_fill_crop(f, cw, ch), 18).copy() if fill == "blur" else np.broadcast_to(colour, (ch, cw, 3)).copy()
            canvas[y0 : y0 + ph] = _fit(f, cw, ph)
            return canvas

        return edit, f"fill 9:16, picture at y={y0}/{ch - ph}, {fill}"
    if kind == "captions":
        where = str(rng.choice(["top", "bottom", "both"]))
        top = int(h * rng.uniform(0.05, 0.3)) if where in ("top", "both") else 0
        bottom = int(h * rng.uniform(0.05, 0.3)) if where in ("bottom", "both") else 0
        colour = np.array([255, 255, 255] if rng.random() < 0.5 else rng.integers(0, 256, 3), np.uint8)
        words = str(rng.choice(["wait for it", "no way", "POV: monday", "watch till the end", "LOL"]))

        def edit(f, t):
            from PIL import Image, ImageDraw, ImageFont

            canvas = np.broadcast_to(colour, f.shape).copy()
            _place_fitted(canvas, f, 0, top, w, h - top - bottom)
            img = Image.fromarray(canvas)
            draw = ImageDraw.Draw(img)
            ink = (0, 0, 0) if int(colour.sum()) > 380 else (255, 255, 255)
            for y, band in ((0, top), (h - bottom, bottom)):
                if band >= 8:
                    draw.text((w // 20, y + band // 4), words, font=ImageFont.load_default(size=max(8, band // 2)), fill=ink)
            return np.asarray(img)

        return edit, f"captions {where} {top}/{bottom} px of {h}"
    raise ValueError(f"Invalid kind ({kind!r}). Supported values are {list(GEOMETRY_KINDS)}.")


def make_geometry(src: Path, dst: Path, kind: str, seed: int, hosts: tuple[Path, ...] = ()) -> str:
    """Write the copy (unless ``dst`` exists: a kept --workdir); returns what was drawn for it.
    ``hosts``: real videos the ``excerpt`` kind may cut its other video from."""
    from vscan.bench.edits import _read_clip

    if kind == "excerpt":
        from vscan.bench.excerpts import make_excerpt

        return make_excerpt(src, dst, seed, hosts)
    from vscan.bench.encoding import _encode

    frames, pts, fps = _read_clip(src)
    h, w = frames[0].shape[:2]
    edit, what = geometry_edit(kind, w, h, float(pts[-1] + 1 / fps), np.random.default_rng(seed), seed + 7)
    if not dst.exists():
        _encode(dst, (edit(f, t) for f, t in zip(frames, pts)), fps=fps, codec="libx264", gop=None, crf=23, bitrate=None)
    return what
