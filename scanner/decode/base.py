"""The Decoder interface and what every backend shares: path checks, output size, batching.

Frame indices mean the same in every backend: the position of the frame in
presentation order of the first video stream (packets sorted by pts), and
pts_seconds are relative to the stream start. Both are checked against each
other on real files by tests/test_decode.py.

Errors (see vscan.errors): FileAccessError for paths we cannot read,
UnsupportedMediaError for files no decoder can open, DecodeError for
failures after opening. A generator that fails midway yields the frames it
has, then raises DecodeError: never an empty or silently short result.
"""

from __future__ import annotations

import os
import re
import stat
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np

from vscan.errors import ConfigError, DecodeError, FileAccessError, UnsupportedMediaError
from vscan.decode.metadata import SampledFrames, VideoMetadata
from vscan.decode.sampling import SamplingPolicy
from vscan.inputs.sniff import refers_elsewhere

__all__ = ["Decoder", "check_readable", "output_size"]

_MAX_REASON_CHARS = 300


#: decord's C++ log prefix ("[20:12:10] /github/workspace/src/video/video_reader.cc:83: ") and
#: FFmpeg's ("[mov,mp4,m4a @ 0x5581...] "): build paths and addresses that mean nothing to a reader
#: and make one file's message differ from run to run.
_NATIVE_LOG_PREFIX = re.compile(r"\[\d{2}:\d{2}:\d{2}\] \S+\.(?:cc|cpp|cxx|h):\d+: |\[[\w,.-]+ @ 0x[0-9a-f]+\] ")


def _reason(exc: BaseException) -> str:
    """An exception in one line for a record: native libraries' log prefixes cut, lines joined."""
    lines = (_NATIVE_LOG_PREFIX.sub("", line).strip() for line in str(exc).splitlines())
    text = f"{type(exc).__name__}: {'; '.join(line for line in lines if line)}".strip()
    return text if len(text) <= _MAX_REASON_CHARS else text[:_MAX_REASON_CHARS] + "..."


def check_readable(path: str | os.PathLike) -> Path:
    """The path, if it is a readable, non-empty regular file; typed errors otherwise."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise FileAccessError(f"{p}: no such file") from None
    except OSError as exc:
        raise FileAccessError(f"{p}: cannot stat: {_reason(exc)}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise FileAccessError(f"{p}: not a regular file")
    try:
        with open(p, "rb") as f:  # read-only: evidence is never modified
            head = f.read(4096)
    except OSError as exc:
        raise FileAccessError(f"{p}: cannot read: {_reason(exc)}") from exc
    if st.st_size == 0:
        raise UnsupportedMediaError(f"{p}: empty file (0 bytes)")
    listed = refers_elsewhere(head)  # an ffconcat/HLS/DASH list: FFmpeg would read the files it names as its video
    if listed:
        raise UnsupportedMediaError(f"{p}: {listed}")
    return p


def output_size(width: int, height: int, max_side: int | None, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """(width, height) with the longest side <= max_side, aspect kept, never
    upscaled; or exactly ``size`` (w, h) when given (the scan decodes straight
    to the hash model's square input: PDQ maps any frame to 64x64 anyway)."""
    if size is not None:
        w, h = (int(v) for v in size)
        if w < 1 or h < 1:
            raise ConfigError(f"Invalid size ({size!r}). Supported values are (width, height) >= 1.")
        return w, h
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _check_options(batch_size: int, max_side: int | None) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"Invalid batch_size ({batch_size!r}). Supported values are integers >= 1.")
    if max_side is not None and (isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 1):
        raise ConfigError(f"Invalid max_side ({max_side!r}). Supported values are None or integers >= 1.")


def _cache_key(path: Path) -> tuple:
    """Identifies one version of a file for the decoders' per-file caches.

    The inode is in it because in-memory files (archive members) reuse
    ``/proc/self/fd/N`` paths, and tmpfs times are coarse enough for two
    members of one size to share a modification time."""
    st = path.stat()
    return (str(path), st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino)


def _batch(indices: list[int], pts: list[float], frames: list[np.ndarray]) -> SampledFrames:
    return SampledFrames(
        np.asarray(indices, dtype=np.int64),
        np.asarray(pts, dtype=np.float64),
        np.ascontiguousarray(np.stack(frames)),
    )


class Decoder(ABC):
    """Reads one file: metadata, then batches of sampled RGB frames, in the
    orientation the file is displayed in (vscan.decode.orient).

    ``frames_decoded`` counts the frames the codec actually decoded during
    the last ``iter_frames`` (sampled or not): the real cost of a policy.
    """

    name: ClassVar[str]
    frames_decoded: int = 0
    #: Set (a threading.Event) by a caller that abandons a stalled decode
    #: (vscan.decode.guard): the decoder's loops stop at their next frame.
    cancel = None

    def check_cancelled(self, path) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise DecodeError(f"{path}: decoding abandoned by its caller")

    @abstractmethod
    def probe(self, path: str | os.PathLike) -> VideoMetadata:
        """Metadata of the file; raises FileAccessError or UnsupportedMediaError."""

    @abstractmethod
    def iter_frames(
        self,
        path: str | os.PathLike,
        policy: SamplingPolicy,
        *,
        batch_size: int = 64,
        max_side: int | None = None,
        size: tuple[int, int] | None = None,
    ) -> Iterator[SampledFrames]:
        """Batches of at most batch_size frames chosen by policy, in index order.

        max_side: longest output side, aspect kept, area-filter downscale,
        never upscaled. size: exact (width, height) instead (aspect not kept).
        """
