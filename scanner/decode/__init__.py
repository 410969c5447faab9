"""Decode and sample: metadata, sampling policies, decoders.

    policy = FixedRate(1.0)
    decoder = open_decoder(path)          # decord, PyAV fallback, stills via PIL
    meta = decoder.probe(path)
    for batch in decoder.iter_frames(path, policy, batch_size=64, max_side=512):
        batch.rgb                          # uint8 [N, H, W, 3]
"""

from vscan.decode.base import Decoder, check_readable, output_size
from vscan.decode.choose import choose_backend, is_still, iter_sampled_frames, open_decoder
from vscan.decode.decord_backend import DecordDecoder
from vscan.decode.images import IMAGE_SUFFIXES, ImageDecoder
from vscan.decode.metadata import SampledFrames, VideoMetadata
from vscan.decode.pyav_backend import PyAVDecoder
from vscan.decode.adaptive import Adaptive, Confirm
from vscan.decode.sampling import (
    Budgeted,
    EveryFrame,
    FixedRate,
    Keyframes,
    SamplingDecision,
    SamplingPolicy,
    Windows,
    parse_policy,
)

__all__ = [
    "Adaptive",
    "Budgeted",
    "Confirm",
    "IMAGE_SUFFIXES",
    "Decoder",
    "DecordDecoder",
    "EveryFrame",
    "FixedRate",
    "ImageDecoder",
    "Keyframes",
    "PyAVDecoder",
    "SampledFrames",
    "SamplingDecision",
    "SamplingPolicy",
    "VideoMetadata",
    "check_readable",
    "choose_backend",
    "is_still",
    "iter_sampled_frames",
    "open_decoder",
    "output_size",
    "Windows",
    "parse_policy",
]
