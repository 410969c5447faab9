"""Pure helpers over bank rows: a row's kind by its prep, runs of near-identical frames, frames
spaced in time. Shared by the hashers (which rows a build keeps), the store (rows per kind in
``bank info``) and ``compact_rows``, without importing any of them."""

from __future__ import annotations

import numpy as np

__all__ = ["row_kind", "run_starts", "spaced", "plan_keeps_prep", "crop_scale"]


def row_kind(prep: str) -> str:
    """The kind of a bank row by its prep: 'frame' (the frame as decoded: prep ''), 'borders',
    'crop', 'strip916', 'rotation', 'grid' (off-centre grid windows), or the prep itself."""
    prep = prep.removeprefix("borders+") if prep != "borders" else prep
    if not prep or prep == "borders":
        return prep or "frame"
    if prep.startswith("crop"):
        return "crop"
    if prep.startswith("window:rot"):
        return "rotation"
    if prep.startswith("window:g"):
        return "grid"
    return prep.removeprefix("window:")


def spaced(frames: list[int], times: list[float], per_second: float | None) -> set[int]:
    """The frames (in order) at least 1 / per_second apart, the first always; all when None."""
    if per_second is None:
        return set(frames)
    out, last = set(), -np.inf
    for f, t in sorted(zip(frames, times)):
        if not np.isfinite(t) or t - last >= 1.0 / per_second - 1e-9:
            out.add(f)
            last = t if np.isfinite(t) else last
    return out


def run_starts(hashes: np.ndarray, frame_bits: int) -> np.ndarray:
    """Positions (in order) of the rows that start a run: bool [N] over rows in frame order."""
    n = hashes.shape[0]
    starts = np.zeros(n, bool)
    if not n:
        return starts
    bits = np.unpackbits(hashes, axis=1).astype(np.int16)
    first = 0
    starts[0] = True
    for i in range(1, n):
        if int(np.count_nonzero(bits[i] != bits[first])) > frame_bits:
            starts[i] = True
            first = i
    return starts


def crop_scale(prep: str) -> float | None:
    """The share of each side a centre-crop row keeps ('crop0.900', 'borders+crop0.900': 0.9), else None."""
    prep = prep.removeprefix("borders+")
    return float(prep[4:]) if prep.startswith("crop") else None


def plan_keeps_prep(prep: str, crops: tuple[float, ...], windows: tuple[str, ...], grid_windows: tuple[str, ...] | None = None) -> bool:
    """Whether a plan with these centre ``crops``, re-post ``windows`` and ``grid_windows`` (None:
    any) keeps an extra row of this prep (borders removed: always)."""
    kind = row_kind(prep)
    name = prep.removeprefix("borders+").removeprefix("window:")
    if kind == "crop":
        return any(abs(crop_scale(prep) - c) < 1e-6 for c in crops)
    if kind in ("strip916", "rotation"):
        return name in windows
    if kind == "grid":
        return grid_windows is None or name in grid_windows
    return True
