"""Synthetic media for tests, benchmarks and the demo.

Everything here is abstract, seeded and made on the spot: textured scenes
(random sinusoids, blurred noise, shapes) that pan and zoom, encoded with
PyAV. No downloads, nothing resembling people.

Content is a function of *time*, not of frame index, so the same seed at
25 fps and at 30 fps shows the same picture at the same second; tests of
timestamp-based sampling rely on that.

`edit_clip` holds the whole decoded clip in memory: it is meant for the short
clips made here, not for real evidence.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

__all__ = [
    "CODEC_CONTAINERS",
    "TRANSFORMS",
    "available_codecs",
    "edit_clip",
    "make_clip",
    "make_corrupt",
    "render_frame",
    "write_image",
]

# codec -> container suffix it is written in.
CODEC_CONTAINERS = {"libx264": ".mp4", "libvpx-vp9": ".webm", "libx265": ".mkv"}

TRANSFORMS = (
    "reencode", "downscale", "crop", "pad", "hflip", "rot90", "brightness",
    "grayscale", "watermark", "text", "noise", "blur", "fps", "speed", "trim",
    "compile",
)  # fmt: skip


def available_codecs() -> tuple[str, ...]:
    """The codecs of CODEC_CONTAINERS this PyAV build can encode."""
    import av

    found = []
    for name in CODEC_CONTAINERS:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # noqa: BLE001 - absent encoder: any error means "no"
            continue
        found.append(name)
    return tuple(found)


# --------------------------------------------------------------------------
# Textures and rendering
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------


def _rate(fps: float) -> Fraction:
    if not (fps > 0 and np.isfinite(fps)):
        raise ValueError(f"Invalid fps ({fps}). Supported values are finite and > 0.")
    return Fraction(fps).limit_denominator(1001)


def _even(n: int) -> int:
    return max(2, int(n) - int(n) % 2)


def _encode(
    path: Path,
    frames: Iterable[np.ndarray],
    *,
    fps: float,
    codec: str,
    gop: int | None,
    crf: int | None,
    bitrate: int | None,
    faststart: bool = False,
) -> Path:
    """Encode RGB frames (all one size) to path with PyAV."""
    import sys

    if codec == "libvpx-vp9" and "decord" in sys.modules:
        # decord ships its own FFmpeg libraries; once it is loaded, PyAV's
        # libvpx encoder refuses to open (EINVAL) in the same process, while
        # decoding is unaffected. Encode in a fresh process instead.
        import multiprocessing

        args = (path, list(frames))
        kwargs = dict(fps=fps, codec=codec, gop=gop, crf=crf, bitrate=bitrate, faststart=faststart)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            return pool.apply(_encode, args, kwargs)
    import av

    if codec not in CODEC_CONTAINERS:
        raise ValueError(
            f"Invalid codec ({codec!r}). Supported values are {sorted(CODEC_CONTAINERS)}."
        )
    if codec not in available_codecs():
        raise RuntimeError(f"codec {codec!r} is not available in this PyAV build")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, str] = {}
    if bitrate is None:
        crf = 28 if crf is None else crf
        options["crf"] = str(crf)
        if codec == "libvpx-vp9":
            options["b:v"] = "0"  # constant-quality mode
    if codec == "libx264" and gop is not None:
        # scenecut=0: keyframes exactly every `gop` frames, so tests can rely on it.
        options["x264-params"] = f"keyint={gop}:min-keyint={gop}:scenecut=0"
    if codec == "libx265":
        params = "log-level=error"
        if gop is not None:
            params += f":keyint={gop}:min-keyint={gop}:scenecut=0"
        options["x265-params"] = params
    if codec == "libvpx-vp9":
        options.setdefault("deadline", "realtime")
        options["cpu-used"] = "8"
    container_options = {"movflags": "+faststart"} if faststart else {}

    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ValueError("no frames to encode")
    h, w = _even(first.shape[0]), _even(first.shape[1])
    with av.open(str(path), "w", options=container_options) as out:
        stream = out.add_stream(codec, rate=_rate(fps), options=options)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if gop is not None:
            stream.codec_context.gop_size = gop
        if codec == "libvpx-vp9":
            # libvpx derives its thread count from the CPUs it may use; once,
            # in a full test run, opening the encoder then failed with EINVAL.
            # Small generated clips need no threads.
            stream.codec_context.thread_count = 1
        if bitrate is not None:
            stream.codec_context.bit_rate = int(bitrate)

        def _all():
            yield first
            yield from it

        for i, rgb in enumerate(_all()):
            rgb = np.ascontiguousarray(rgb[:h, :w])
            if rgb.shape != (h, w, 3):
                raise ValueError(f"frame {i} has shape {rgb.shape}, expected {(h, w, 3)}")
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_clip(
    path: str | os.PathLike,
    *,
    seed: int,
    seconds: float = 4.0,
    fps: float = 25.0,
    size: tuple[int, int] = (320, 240),
    scenes: int = 2,
    codec: str = "libx264",
    gop: int | None = None,
    crf: int | None = None,
    bitrate: int | None = None,
    faststart: bool = False,
) -> Path:
    """Write a deterministic synthetic clip; size is (width, height).

    `gop` fixes the keyframe interval (x264/x265: exactly, scene cuts off).
    Quality is `crf` (default 28) unless `bitrate` (bits/s) is given.
    """
    n = int(round(seconds * fps))
    if n < 1:
        raise ValueError(f"Invalid seconds*fps ({seconds}*{fps}). Supported values give >= 1 frame.")
    render = _Renderer(seed=seed, seconds=seconds, size=size, scenes=scenes)
    rate = _rate(fps)
    frames = (render(float(i / rate)) for i in range(n))
    return _encode(Path(path), frames, fps=float(rate), codec=codec, gop=gop, crf=crf,
                   bitrate=bitrate, faststart=faststart)  # fmt: skip


# --------------------------------------------------------------------------
# Edits
# --------------------------------------------------------------------------


def _read_clip(path: Path) -> tuple[list[np.ndarray], np.ndarray, float]:
    """All frames as RGB, their pts in seconds (from 0) and the average fps."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 25)
        frames, pts = [], []
        for i, frame in enumerate(container.decode(stream)):
            frames.append(frame.to_ndarray(format="rgb24"))
            pts.append(float(frame.pts * frame.time_base) if frame.pts is not None else i / fps)
    if not frames:
        raise ValueError(f"{path}: no frames decoded")
    pts_arr = np.asarray(pts) - pts[0]
    return frames, pts_arr, fps


def _resample(frames: Sequence[np.ndarray], pts: np.ndarray, times: np.ndarray) -> list[np.ndarray]:
    """The frame on screen at each time (last with pts <= t)."""
    idx = np.clip(np.searchsorted(pts, times + 1e-6, side="right") - 1, 0, len(frames) - 1)
    return [frames[i] for i in idx]


def _resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BOX))


def _frame_edit(transform: str, params: dict, rng: np.random.Generator):
    """A per-frame function for the transforms that do not change timing."""
    from PIL import Image, ImageDraw, ImageFilter

    p = params
    if transform == "reencode":
        return lambda f: f
    if transform == "downscale":
        target_h = int(p.get("height", 240))

        def downscale(f):
            h, w = f.shape[:2]
            th = min(target_h, h)
            return _resize(f, _even(round(w * th / h)), _even(th))

        return downscale
    if transform == "crop":
        frac = float(p.get("fraction", 0.2))  # share of width/height removed, centred

        def crop(f):
            h, w = f.shape[:2]
            dy, dx = int(h * frac / 2), int(w * frac / 2)
            return f[dy : h - dy, dx : w - dx]

        return crop
    if transform == "pad":
        frac = float(p.get("fraction", 0.125))  # bar size per side, share of the frame
        mode = p.get("mode", "letterbox")
        if mode not in ("letterbox", "pillarbox"):
            raise ValueError(f"Invalid mode ({mode!r}). Supported values are 'letterbox', 'pillarbox'.")

        def pad(f):
            h, w = f.shape[:2]
            out = np.zeros_like(f)
            if mode == "letterbox":
                bar = int(h * frac)
                ih = _even(h - 2 * bar)
                iw = _even(round(w * ih / h))
            else:
                bar = int(w * frac)
                iw = _even(w - 2 * bar)
                ih = _even(round(h * iw / w))
            y0, x0 = (h - ih) // 2, (w - iw) // 2
            out[y0 : y0 + ih, x0 : x0 + iw] = _resize(f, iw, ih)
            return out

        return pad
    if transform == "hflip":
        return lambda f: f[:, ::-1]
    if transform == "rot90":
        k = int(p.get("k", 1))
        return lambda f: np.rot90(f, k)
    if transform == "brightness":
        delta = float(p.get("delta", 40))
        return lambda f: np.clip(f.astype(np.int16) + int(delta), 0, 255).astype(np.uint8)
    if transform == "grayscale":

        def gray(f):
            y = f @ np.array([0.299, 0.587, 0.114])
            return np.repeat(y.clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)

        return gray
    if transform == "watermark":
        frac = float(p.get("fraction", 0.1))  # share of the frame area covered
        colour = np.array(p.get("color", (255, 255, 255)), np.uint8)

        def watermark(f):
            f = f.copy()
            h, w = f.shape[:2]
            bh, bw = max(1, int(h * frac**0.5)), max(1, int(w * frac**0.5))
            f[h - bh - h // 20 : h - h // 20, w - bw - w // 20 : w - w // 20] = colour
            return f

        return watermark
    if transform == "text":
        label = str(p.get("label", "SAMPLE 0123"))
        shapes = [tuple(rng.random(4)) for _ in range(int(p.get("shapes", 3)))]

        def text(f):
            img = Image.fromarray(f)
            draw = ImageDraw.Draw(img)
            h, w = f.shape[:2]
            for x0, y0, x1, y1 in shapes:
                box = sorted((x0 * w, x1 * w)), sorted((y0 * h, y1 * h))
                draw.rectangle((box[0][0], box[1][0], box[0][0] + w / 8, box[1][0] + h / 12),
                               outline=(255, 255, 0), width=2)  # fmt: skip
            draw.text((w // 10, h - h // 6), label, fill=(255, 255, 255))
            return np.asarray(img)

        return text
    if transform == "noise":
        sigma = float(p.get("sigma", 10))
        return lambda f: np.clip(f + rng.normal(0, sigma, f.shape), 0, 255).astype(np.uint8)
    if transform == "blur":
        radius = float(p.get("radius", 2))
        return lambda f: np.asarray(Image.fromarray(f).filter(ImageFilter.GaussianBlur(radius)))
    return None


def edit_clip(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    transform: str,
    *,
    codec: str = "libx264",
    crf: int | None = None,
    seed: int = 0,
    **params,
) -> Path:
    """Decode src, apply one edit with numpy, re-encode to dst.

    Parameters per transform (defaults): reencode(crf=40), downscale(height=240),
    crop(fraction=0.2), pad(fraction=0.125, mode="letterbox"|"pillarbox"),
    hflip, rot90(k=1), brightness(delta=40), grayscale, watermark(fraction=0.1,
    color), text(label, shapes=3), noise(sigma=10), blur(radius=2),
    fps(fps=...), speed(factor=...), trim(start=0, end=None),
    compile(other_seed=..., at=1.0, start=0, end=None, seconds=4.0).
    """
    if transform not in TRANSFORMS:
        raise ValueError(f"Invalid transform ({transform!r}). Supported values are {list(TRANSFORMS)}.")
    frames, pts, fps = _read_clip(Path(src))
    duration = float(pts[-1] + 1 / fps)
    rng = np.random.default_rng(seed)
    out_fps = fps
    if transform == "reencode" and crf is None:
        crf = int(params.get("quality_crf", 40))
    per_frame = _frame_edit(transform, params, rng)
    if per_frame is not None:
        out = (per_frame(f) for f in frames)
    elif transform == "fps":
        out_fps = float(params["fps"])
        times = np.arange(int(np.floor(duration * out_fps - 1e-9)) + 1) / out_fps
        out = _resample(frames, pts, times[times < duration])
    elif transform == "speed":
        factor = float(params["factor"])
        if factor <= 0:
            raise ValueError(f"Invalid factor ({factor}). Supported values are > 0.")
        n = max(1, int(round(duration / factor * fps)))
        out = _resample(frames, pts, np.arange(n) / fps * factor)
    elif transform in ("trim", "compile"):
        start = float(params.get("start", 0.0))
        end = float(params.get("end") if params.get("end") is not None else duration)
        keep = (pts >= start - 1e-6) & (pts < end - 1e-6)
        excerpt = [f for f, k in zip(frames, keep) if k]
        if not excerpt:
            raise ValueError(f"Invalid trim ({start}, {end}): no frames in [{start}, {end}) s")
        if transform == "trim":
            out = excerpt
        else:
            h, w = frames[0].shape[:2]
            other_seconds = float(params.get("seconds", 4.0))
            render = _Renderer(seed=int(params["other_seed"]), seconds=other_seconds,
                               size=(w, h), scenes=int(params.get("scenes", 2)))  # fmt: skip
            n_other = int(round(other_seconds * fps))
            at = min(int(round(float(params.get("at", 1.0)) * fps)), n_other)
            other = [render(i / fps) for i in range(n_other)]
            out = other[:at] + excerpt + other[at:]
    else:  # pragma: no cover - TRANSFORMS and the branches agree
        raise AssertionError(transform)
    return _encode(Path(dst), out, fps=out_fps, codec=codec, gop=params.get("gop"),
                   crf=crf, bitrate=None)  # fmt: skip


# --------------------------------------------------------------------------
# Broken files and stills
# --------------------------------------------------------------------------

CORRUPT_KINDS = ("truncated", "random", "text", "empty")


def make_corrupt(path: str | os.PathLike, kind: str, *, seed: int = 0) -> Path:
    """Write a broken media file.

    truncated: the first 30% of a valid mp4 whose index (moov) is at the
    front, so it opens and then runs out of data midway.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "truncated":
        tmp = path.with_name(path.name + ".full.mp4")
        make_clip(tmp, seed=seed, seconds=3.0, size=(160, 120), faststart=True)
        data = tmp.read_bytes()
        tmp.unlink()
        path.write_bytes(data[: int(len(data) * 0.3)])
    elif kind == "random":
        path.write_bytes(np.random.default_rng(seed).bytes(64 * 1024))
    elif kind == "text":
        path.write_text("This is not a video.\n" * 200)
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        raise ValueError(f"Invalid kind ({kind!r}). Supported values are {list(CORRUPT_KINDS)}.")
    return path


def write_image(path: str | os.PathLike, seed: int, *, size: tuple[int, int] = (320, 240)) -> Path:
    """Write a still (format from the suffix: .png, .jpg, .webp, .bmp, .gif)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = _texture(np.random.default_rng(seed), size[1], size[0])
    Image.fromarray(rgb).save(path)
    return path

