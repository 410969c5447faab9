"""What travels between the scan's stages, typed: a decode task's :class:`FileSummary`
(to the driver) and :class:`DecodedFile` (its frames, to a model actor),
and the model actor's :class:`ModelResult` (back to the driver).

Each checks its invariants when it is made (``__post_init__``), so a payload
that breaks them fails in the process that built it, before it crosses a
Ray boundary, not in the actor that reads it:

- every frame set of a :class:`DecodedFile` has one row per sampled frame
  (row i is original row i: borders removed, overlays filled, the inset
  picture, the triage view), frame numbers and times alike;
- a box goes with its frame set, never alone;
- a still's windows (:class:`RegionSet` with ``rows``) say which sample each
  window row belongs to, and their decode-time hashes have one quality each.

:meth:`DecodedFile.merged` is the merge of adaptive sampling's two passes.
The frame-set helpers that build a payload (vscan.frames.borders, overlays,
regions; vscan.detect.frames_view) fill a plain dict inside the decode task,
which :meth:`DecodedFile.from_dict` then types. A DecodedFile reads as a
mapping with those same key names too, for the code that matches a file's
hashed frames (vscan.runtime.file_match, vscan.output.hash_store, rematch).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Iterator

import numpy as np

__all__ = ["FrameSet", "RegionSet", "DecodedFile", "FileSummary", "ModelResult", "PayloadError"]

#: The triage view's key (vscan.detect.frames_view.TRIAGE_KEY; not imported: no detector imports here).
_TRIAGE = "triage_frames"


class PayloadError(ValueError):
    """A payload that breaks its invariants: a bug in the stage that built it."""


class _SetsFields:
    """``x["name"] = value`` sets a field (and only a field): how the Ray
    wrappers stamp where a file ran (vscan.runtime.placement: ``node``;
    vscan.runtime.model_pool: ``ran_on``)."""

    def __setitem__(self, name: str, value: Any) -> None:
        if name not in {f.name for f in fields(self)}:
            raise KeyError(name)
        setattr(self, name, value)


def _rows(name: str, array: Any, n: int) -> None:
    if array is not None and len(array) != n:
        raise PayloadError(f"{name}: {len(array)} rows, but {n} sampled frames")


@dataclass(eq=False)
class FrameSet:
    """One version of every sampled frame (row i = original row i) and the box it was cut with."""

    frames: np.ndarray
    box: np.ndarray | None = None


@dataclass(eq=False)
class RegionSet:
    """The inset picture: ``frames`` (row i = sample i) and ``box`` [4]; or a
    still's windows: ``rows`` (the sample each window row belongs to),
    ``box`` [K, 4], and, when hashed where they were made, ``hashes``
    [K, 8, 32] and ``quality`` [K] instead of ``frames``."""

    box: np.ndarray
    frames: np.ndarray | None = None
    rows: np.ndarray | None = None
    hashes: np.ndarray | None = None
    quality: np.ndarray | None = None

    def check(self, n: int) -> None:
        if self.frames is None and self.hashes is None:
            raise PayloadError("region: neither frames nor hashes")
        if self.rows is None:
            _rows("region frames", self.frames, n)
            return
        k = len(self.hashes if self.hashes is not None else self.frames)
        _rows("region rows", self.rows, k)
        if self.hashes is not None and (self.quality is None or len(self.quality) != k):
            raise PayloadError("region: decode-time hashes without one quality each")
        if len(self.rows) and (np.min(self.rows) < 0 or np.max(self.rows) >= max(n, 1)):
            raise PayloadError(f"region rows point past the {n} sampled frames")


@dataclass(eq=False)
class DecodedFile(Mapping):
    """One file's decoded frames (one pass, or two merged) for the model stage."""

    frames: np.ndarray  # uint8 [n, S, S, 3], at the model's input size
    frame_numbers: np.ndarray  # int64 [n]
    timestamps: np.ndarray  # float64 [n], seconds
    duration_seconds: float = 0.0  # 0: unknown
    sha1: str | None = None  # for SHA-1-only bank entries
    source_size: np.ndarray | None = None  # (w, h) as decoded: detectors letterbox with it
    unbordered: FrameSet | None = None  # borders removed (box: top, bottom, left, right in frame pixels)
    unoverlaid: FrameSet | None = None  # static overlays filled (box: one row per overlay)
    region: RegionSet | None = None  # the inset picture, or a still's windows
    triage_frames: np.ndarray | None = None  # the frames at their aspect ratio, for the triage models
    # Adaptive sampling's confirmation, decoded ahead in the same decode task, and its
    # policy: matched in the same model call if the first pass decides (vscan.runtime.confirm_ahead).
    ahead: "DecodedFile | None" = None
    ahead_policy: Any = None
    # Region search left to the model call, done only where the plain match does not decide (vscan.runtime.deferred_regions).
    regions_deferred: bool = False
    # Cuts coded without a keyframe a second pass looks after if this first pass does not decide (vscan.decode.cuts.first_pass_cuts).
    cut_seconds: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.frames)
        _rows("frame_numbers", self.frame_numbers, n)
        _rows("timestamps", self.timestamps, n)
        _rows("triage_frames", self.triage_frames, n)
        for name, version in (("unbordered", self.unbordered), ("unoverlaid", self.unoverlaid)):
            if version is not None:
                _rows(f"{name} frames", version.frames, n)
        if self.region is not None:
            self.region.check(n)

    # The payload's key names (vscan.frames.* build them; matching reads them).
    _KEYS = ("frames", "frame_numbers", "timestamps", "duration_seconds", "sha1", "source_size", "unbordered_frames", "border_box",
             "unoverlaid_frames", "overlay_box", "region_frames", "region_box", "region_rows", "region_hashes", "region_quality", _TRIAGE)  # fmt: skip

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> "DecodedFile":
        """The typed payload of a dict filled by the frame-set helpers (keys as :attr:`_KEYS`)."""
        unknown = set(payload) - set(cls._KEYS)
        if unknown:
            raise PayloadError(f"unknown payload keys: {sorted(unknown)}")
        g = payload.get
        sha1 = g("sha1")
        sha1 = None if sha1 is None or np.asarray(sha1).item() is None else str(np.asarray(sha1).item())
        region = None
        if g("region_frames") is not None or g("region_hashes") is not None:
            region = RegionSet(g("region_box"), g("region_frames"), g("region_rows"), g("region_hashes"), g("region_quality"))
        return cls(
            frames=payload["frames"], frame_numbers=payload["frame_numbers"], timestamps=payload["timestamps"],
            duration_seconds=float(g("duration_seconds", 0.0) or 0.0), sha1=sha1, source_size=g("source_size"),
            unbordered=FrameSet(payload["unbordered_frames"], g("border_box")) if g("unbordered_frames") is not None else None,
            unoverlaid=FrameSet(payload["unoverlaid_frames"], g("overlay_box")) if g("unoverlaid_frames") is not None else None,
            region=region, triage_frames=g(_TRIAGE),
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The payload as the frame-set helpers' dict (keys present only for the sets the file has)."""
        out: dict[str, Any] = {"frames": self.frames, "frame_numbers": self.frame_numbers, "timestamps": self.timestamps,
                               "duration_seconds": np.float64(self.duration_seconds), "sha1": np.array(self.sha1)}  # fmt: skip
        if self.source_size is not None:
            out["source_size"] = self.source_size
        if self.unbordered is not None:
            out["unbordered_frames"], out["border_box"] = self.unbordered.frames, self.unbordered.box
        if self.unoverlaid is not None:
            out["unoverlaid_frames"], out["overlay_box"] = self.unoverlaid.frames, self.unoverlaid.box
        r = self.region
        if r is not None:
            parts = {"region_frames": r.frames, "region_box": r.box, "region_rows": r.rows, "region_hashes": r.hashes, "region_quality": r.quality}
            out.update({k: v for k, v in parts.items() if v is not None})
        if self.triage_frames is not None:
            out[_TRIAGE] = self.triage_frames
        return out

    # Read-only mapping view, with the payload's key names.
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def merged(self, second: "DecodedFile") -> "DecodedFile":
        """One payload from two sampling passes over a file, in frame order;
        a frame both took counts once (the first pass's row). A frame set one
        pass found and the other did not is dropped (plain frames are kept),
        but for static overlays the first pass found, which are filled on the
        second pass's frames (``_overlay_filled``); the inset picture is then
        searched again on both passes' frames."""
        numbers = np.concatenate([self.frame_numbers, second.frame_numbers])
        _, keep = np.unique(numbers, return_index=True)  # sorted by frame number, first pass wins ties
        second = _overlay_filled(second, self.unoverlaid)
        # Runs of one pass's consecutive rows, each taken as a slice: the rows copied once (joining the passes,
        # then picking rows, copied the frames twice, and a 4-D fancy index is slow: ~3x the time, issue #30).
        n, cut = self.frame_numbers.size, np.flatnonzero((np.diff(keep) != 1) | (keep[1:] == self.frame_numbers.size)) + 1
        spans = list(zip(keep[np.r_[0, cut]].tolist(), (keep[np.r_[cut, keep.size] - 1] + 1).tolist())) if keep.size else []

        def rows(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
            if a is None or b is None:
                return None
            if not spans or len(a) != n or len(b) != numbers.size - n:
                return np.concatenate([a, b])[keep]
            return np.concatenate([a[lo:hi] if lo < n else b[lo - n : hi - n] for lo, hi in spans])

        def version(a: FrameSet | None, b: FrameSet | None) -> FrameSet | None:
            return None if a is None or b is None else FrameSet(rows(a.frames, b.frames), a.box)  # the first pass's box

        both = DecodedFile(
            frames=rows(self.frames, second.frames), frame_numbers=numbers[keep],
            timestamps=rows(self.timestamps, second.timestamps), duration_seconds=self.duration_seconds, sha1=self.sha1,
            source_size=self.source_size if self.source_size is not None else second.source_size,
            unbordered=version(self.unbordered, second.unbordered), unoverlaid=version(self.unoverlaid, second.unoverlaid),
            triage_frames=rows(self.triage_frames, second.triage_frames),
        )  # fmt: skip
        a, b = self.region, second.region
        a_inset, b_inset = a is not None and a.frames is not None, b is not None and b.frames is not None
        both.regions_deferred = self.regions_deferred or second.regions_deferred
        if a_inset != b_inset:  # region finding disagreed: searched again on both passes' frames
            from vscan.frames.regions import add_region_box

            return replace(DecodedFile.from_dict(add_region_box(both.to_dict())), regions_deferred=both.regions_deferred)
        if a_inset:
            return replace(both, region=RegionSet(a.box, rows(a.frames, b.frames)))
        return replace(both, region=a if a is not None else b)  # a still's windows (one frame per pass), or none


def _overlay_filled(second: "DecodedFile", unoverlaid: FrameSet | None) -> "DecodedFile":
    """``second`` with the first pass's static overlays filled on its frames where it found none itself: a
    confirmation of one or two frames cannot find an overlay (that takes several frames), and dropping
    the overlay-filled version then undid a first pass that it had decided (an emoji or caption copy)."""
    if unoverlaid is None or second.unoverlaid is not None or not len(second.frames) or unoverlaid.box is None:
        return second
    from vscan.frames.overlays import OverlayBox, fill_overlays

    boxes = [OverlayBox(*(int(v) for v in row)) for row in np.asarray(unoverlaid.box).reshape(-1, 4)]
    return replace(second, unoverlaid=FrameSet(fill_overlays(second.frames, boxes), unoverlaid.box))


@dataclass
class FileSummary(_SetsFields):
    """What a decode task tells the driver about one file (its record's facts; the frames go to the model)."""

    path: str
    sha256: str | None = None
    md5: str | None = None
    sha1: str | None = None
    size_bytes: int | None = None
    digest_skipped: str | None = None  # why the digests are null (vscan.inputs.digests.sparse_note)
    error: dict[str, Any] | None = None  # vscan.errors.error_info: the file's record is an error
    media: dict[str, Any] | None = None
    duration_seconds: float | None = None
    partial: dict[str, Any] | None = None  # demuxed short of the declared duration
    frames_sampled: int = 0
    frames_decoded: int = 0
    truncated: Any = None  # the frame budget was spread thinner over the file
    sampling: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    known_benign: Any = None  # the --ignore list hit: never decoded
    unchanged: bool = False  # --state knew its content: never decoded
    object: dict[str, Any] | None = None  # object storage: URI, ETag, version, bytes read
    node: str | None = None  # the node it was decoded on
    second_pass: dict[str, Any] | None = None  # adaptive sampling's second pass: how it went
    ahead: "FileSummary | None" = None  # its confirmation decoded ahead (DecodedFile.ahead): counts and timings

    def __post_init__(self) -> None:
        if self.error is not None and not {"type", "message"} <= set(self.error):
            raise PayloadError(f"{self.path}: an error without type and message: {self.error}")
        if self.frames_sampled < 0 or self.frames_decoded < 0:
            raise PayloadError(f"{self.path}: negative frame counts")

    @classmethod
    def from_dict(cls, summary: dict[str, Any]) -> "FileSummary":
        names = {f.name for f in fields(cls)}
        unknown = set(summary) - names
        if unknown:
            raise PayloadError(f"unknown summary keys: {sorted(unknown)}")
        return cls(**summary)

    def as_dict(self) -> dict[str, Any]:
        """For the record builders (vscan.verdict.record, the run ledger): the fields that are set."""
        out = asdict(replace(self, ahead=None))
        return {k: v for k, v in out.items() if v is not None and not (k == "unchanged" and not v)}

    def merged(self, second: "FileSummary", policy_text: str) -> "FileSummary":
        """Both passes': counts, timings and an object's bytes read summed, the first pass's facts."""
        timings = dict(self.timings)
        for key, value in second.timings.items():
            timings[key] = timings.get(key, 0.0) + value
        read = self.object
        if read is not None and second.object is not None:  # an object's second pass reads from the store again
            read = {**read, "bytes_read": int(read.get("bytes_read") or 0) + int(second.object.get("bytes_read") or 0)}
        return replace(self, ahead=None, object=read, frames_decoded=self.frames_decoded + second.frames_decoded, frames_sampled=self.frames_sampled + second.frames_sampled,
                       truncated=self.truncated or second.truncated, timings=timings,
                       sampling=f"{self.sampling or ''} + {policy_text}".strip(" +"))  # fmt: skip


@dataclass
class ModelResult(_SetsFields):
    """The model stage's result for one file (vscan.runtime.model_actor)."""

    key: int
    matches: list  # vscan.bank.match.Match
    timings: dict[str, float]
    frames_sampled: int  # distinct frames hashed: two passes' shared frames count once
    qualities: Any = None  # PDQ quality per sampled frame
    skipped_disabled: list[str] | None = None  # disabled bank entries it would have matched (vscan.bank.updates)
    detections: Any = None
    detection_timeline: Any = None
    triage_moments: Any = None  # vscan.detect.triage_io: the moments a triage second pass looks at
    frame_hashes: dict[str, Any] | None = None  # --hash-store / --allow: taken off before the sink
    refine: Any = None  # adaptive sampling: the second pass to decode
    confirmed: str | None = None  # the confirmation decoded ahead, matched in this call (its policy's description)
    ran_on: dict[str, Any] | None = None  # the model node and actor

    def __post_init__(self) -> None:
        if self.qualities is not None and len(self.qualities) != self.frames_sampled:
            raise PayloadError(f"file {self.key}: {len(self.qualities)} qualities for {self.frames_sampled} frames")

    @classmethod
    def of(cls, result: "ModelResult | dict[str, Any]") -> "ModelResult":
        return result if isinstance(result, ModelResult) else cls.from_dict(result)

    @classmethod
    def from_dict(cls, result: dict[str, Any]) -> "ModelResult":
        """The typed result of the dict the model stage's helpers fill (vscan.runtime.file_match, vscan.detect.triage_io)."""
        unknown = set(result) - {f.name for f in fields(cls)}
        if unknown:
            raise PayloadError(f"unknown model result keys: {sorted(unknown)}")
        return cls(**result)
