"""Media banks of each row plan (``vscan bank build --rows``, issue #24), for the benches that score a
plan beside the default: ``vscan.bench.bench_generalise --rows full,sparse``."""

from __future__ import annotations

from pathlib import Path

__all__ = ["plan_bank", "rows_per_second"]


def plan_bank(work: Path, sources: list[Path], plan: str) -> Path:
    """A media bank of ``sources`` as ``vscan bank build --rows plan`` builds it (``media-PLAN.bank``)."""
    from vscan.bank.hashers import ROW_PLANS, media_hasher
    from vscan.bank.store import build_bank
    from vscan.decode import EveryFrame

    media = work / f"media-{plan}.bank"
    if not media.exists():
        build_bank(media, sources, label="reported", hash_media=media_hasher(EveryFrame(), "cpu", ROW_PLANS[plan]), row_plan=plan)
    return media


def rows_per_second(bank: Path) -> float:
    """Bank rows (frame and extra, every kind) per reported video-second (``vscan bank info``'s figure)."""
    from vscan.bank.store import Bank

    with Bank(bank) as opened:
        return float(opened.info().rows_per_video_second or 0.0)
