"""``vscan demo``: a synthetic archive, a bank of its sources, a full scan.

Everything is generated here (abstract moving textures; no people, no
downloads): a few "reported" source clips, edited re-uploads of them (re-encoded, downscaled, brighter, grey, trimmed,
mirrored, cropped, letterboxed),
unrelated clips, and one corrupt file, so a newcomer sees matches, misses
and an error record in one run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vscan.bench import synth

__all__ = ["DemoArchive", "make_demo_archive", "EDITS"]

#: (transform, parameters) applied to each source clip to make re-uploads.
EDITS = (
    ("reencode", {"crf": 38}),
    ("downscale", {"height": 144}),
    ("brightness", {"delta": 35}),
    ("grayscale", {}),
    ("trim", {"start": 1.0, "end": 4.0}),
    ("hflip", {}),
    ("crop", {"fraction": 0.15}),
    ("pad", {"mode": "letterbox"}),
)


@dataclass(frozen=True)
class DemoArchive:
    root: Path
    sources: tuple[Path, ...]
    archive: Path
    expected_matches: dict[str, str]  # archive file name -> source entry id
    expected_errors: tuple[str, ...]
    unrelated: tuple[str, ...]


def make_demo_archive(root: str | Path, *, num_sources: int = 3, num_unrelated: int = 3, seconds: float = 6.0) -> DemoArchive:
    root = Path(root)
    sources_dir, archive = root / "reported", root / "archive"
    sources_dir.mkdir(parents=True, exist_ok=True)
    archive.mkdir(parents=True, exist_ok=True)
    sources, expected = [], {}
    for i in range(num_sources):
        src = synth.make_clip(sources_dir / f"reported-{i + 1}.mp4", seed=1000 + i, seconds=seconds, size=(320, 240), scenes=3)
        sources.append(src)
        transform, params = EDITS[i % len(EDITS)], None
        for j, (transform, params) in enumerate(EDITS):
            if (i + j) % 2:  # a varied, not exhaustive, mix of edits per source
                continue
            name = f"upload-{i + 1}-{transform}.mp4"
            synth.edit_clip(src, archive / name, transform, **params)
            expected[name] = src.stem
    unrelated = []
    for k in range(num_unrelated):
        name = f"holiday-{k + 1}.mp4"
        synth.make_clip(archive / name, seed=5000 + k, seconds=seconds, size=(320, 240), scenes=3)
        unrelated.append(name)
    synth.make_corrupt(archive / "damaged.mp4", "truncated")
    synth.make_corrupt(archive / "not-a-video.mp4", "text")
    return DemoArchive(
        root=root,
        sources=tuple(sources),
        archive=archive,
        expected_matches=expected,
        expected_errors=("not-a-video.mp4",),
        unrelated=tuple(unrelated),
    )
