"""A full build's extra-row pictures: each frame's 512 px luma straight from the decoder's own plane.

``--rows full`` hashes ~16 extra rows of every frame (vscan.bank.one_pass) with the compiled hash
(vscan.bank.banded_hash), which reads luma only. Their 512 px RGB picture (libswscale's colour conversion,
then the model's luma of it) was ~1.0 ms a frame of the real samples' CPU; libswscale's grey of the same
frame by the same area scaler (``vscan.decode.pyav_reuse._turned_luma``: the Y plane scaled, in full
range) is ~0.2 ms, and the luma needs no pass over three channels. The two lumas differ by rounding and
the colour matrix (a mean of 0.3-1.5 levels on the real samples), so a row moves by a few bits at most
(stop 45: recall per kind on bench_robustness the same, old against new, on the bench's seeds and a
held-out set). The frame rows keep the scan's RGB square: an identical copy meets them at 0.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Pictures", "picture"]


class Pictures(NamedTuple):
    """A batch of extra-row pictures as ``vscan.hashing.media._ExtraRows.add`` reads it (``SampledFrames``' fields;
    ``rgb`` may hold luma pictures, uint8 [N, H, W, 1], which ``vscan.bank.banded_hash`` hashes as grey RGB)."""

    frame_indices: np.ndarray
    pts_seconds: np.ndarray
    rgb: np.ndarray


def picture(made, luma: bool) -> np.ndarray:
    """A frame's 512 px picture from ``PyAVDecoder.also``'s maker (``_turned_rgb`` of the decoded frame): with ``luma``
    (a full build's extra rows hashed on the CPU) its luma picture (``_turned_luma``), else (or from any other maker)
    the maker's RGB."""
    from vscan.decode.pyav_reuse import _turned_luma, _turned_rgb

    if luma and getattr(made, "func", None) is _turned_rgb:
        return _turned_luma(*made.args, **made.keywords)
    return made()
