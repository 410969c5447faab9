"""One frame preparation for every hash compared with a scan's: the scan, bank
builds (a media file's ``original`` rows) and ``vscan hash --as-scanned``.

A scan decodes each sampled frame straight to a ``frame_size`` x
``frame_size`` square with PyAV's area scaler (vscan.runtime.decode_task);
PDQ's bits depend on the pixels it is given, so a bank row made from the
same frame any other way (a 512 px longest side, decord's scaler, numpy's
bilinear) starts 8-25 bits away from the scan's hash of a byte-identical
copy (measured on the sample videos, tests/test_prepare.py). Everything
that must meet a scan's frame at distance 0 decodes through here.

PyAV, not decord, because the scan's default sampling (adaptive, and fixed
rates up to vscan.decode.choose.DENSE_FPS) decodes with PyAV; a dense scan
(every frame, high rates) may pick decord, whose scaler rounds differently
(~1-2 bits). Stills go through the image decoder either way.
"""

from __future__ import annotations

import os
from dataclasses import fields
from typing import Iterator, Literal

from vscan.config import Sampling
from vscan.decode import Decoder, SamplingPolicy, open_decoder
from vscan.decode.base import SampledFrames

__all__ = ["SCAN_FRAME_SIDE_PX", "prepared_decoder", "iter_prepared"]

#: The scan's default square side (``ScanConfig.sampling.frame_size``), read from the config so there is one number.
SCAN_FRAME_SIDE_PX: int = next(f.default for f in fields(Sampling) if f.name == "frame_size")


def prepared_decoder(path: str | os.PathLike, backend: Literal["auto", "decord", "pyav"] = "auto") -> Decoder:
    """The decoder a scan's default sampling uses for ``path``: PyAV for videos
    ("auto" means that here), the image decoder for stills; an explicit backend is kept."""
    return open_decoder(path, "pyav" if backend == "auto" else backend)


def iter_prepared(
    decoder: Decoder, path: str | os.PathLike, policy: SamplingPolicy, *, side_px: int = SCAN_FRAME_SIDE_PX, batch_size: int = 64
) -> Iterator[SampledFrames]:
    """Batches of ``policy``'s frames as a scan sees them: ``side_px`` square, decoder-scaled."""
    return decoder.iter_frames(path, policy, batch_size=batch_size, size=(side_px, side_px))
