"""The model stage's matcher for frames that arrive already hashed: ``vscan rematch`` (hashes from
a hash store) and ``--allow`` banks (a finished file's hashes) match through the scan's own
matcher and rules, with no hash model built."""

from __future__ import annotations

from vscan.config import ScanConfig
from vscan.runtime.model_actor import ModelWorker

__all__ = ["HashedMatcher"]


class HashedMatcher(ModelWorker):
    """The model stage's matcher without its models: frames arrive hashed."""

    def __init__(self, config: ScanConfig, bank: str) -> None:  # noqa: no super(): no hash model is needed
        from vscan.runtime.bank_share import open_bank

        self.config, self.detectors, self.triage = config, [], None
        self._stats = {"calls": 0, "files": 0, "frames": 0, "max_frames_per_call": 0, "busy_seconds": 0.0}
        self.index = open_bank(bank, config)

    def _searches_offcentre(self) -> bool:
        return False  # it cuts windows out of the pixels, which the store does not keep
