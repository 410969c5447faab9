"""Media banks of each row plan (``vscan bank build --rows``, issue #24), for the benches that score a
plan beside the default: ``vscan.bench.bench_generalise --rows full,sparse``, ``vscan.bench.bench_bank_build``'s robust part."""

from __future__ import annotations

from pathlib import Path

__all__ = ["plan_bank", "rows_per_second"]


def plan_bank(bank: Path, sources: list[Path], plan: str) -> Path:
    """``bank``: a media bank of ``sources`` as ``vscan bank build --rows plan`` builds it, built where it is missing (a
    kept work directory's is reused). ``row_plan`` is recorded as the command records it: a scan reads it
    (``vscan.bank.query_side.scan_config_for_bank``)."""
    from vscan.bank.hashers import ROW_PLANS, media_hasher
    from vscan.bank.store import build_bank
    from vscan.decode import EveryFrame

    if not bank.exists():
        build_bank(bank, sources, label="reported", hash_media=media_hasher(EveryFrame(), "cpu", ROW_PLANS[plan]), row_plan=plan)
    return bank


def rows_per_second(bank: Path) -> float:
    """Bank rows (frame and extra, every kind) per reported video-second (``vscan bank info``'s figure)."""
    from vscan.bank.store import Bank

    with Bank(bank) as opened:
        return float(opened.info().rows_per_video_second or 0.0)
