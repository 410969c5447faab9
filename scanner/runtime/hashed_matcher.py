"""The model stage's matcher for frames that arrive already hashed: ``vscan rematch`` (hashes from
a hash store) and ``--allow`` banks (a finished file's hashes) match through the scan's own
matcher and rules, with no hash model built."""

from __future__ import annotations

from vscan.config import ScanConfig
from vscan.runtime.file_match import FileMatcher

__all__ = ["HashedMatcher"]


class HashedMatcher(FileMatcher):
    """The model stage's matcher without its models: frames arrive hashed, with no
    pixels, so no off-centre search (it cuts windows out of the frames)."""

    def __init__(self, config: ScanConfig, bank: str) -> None:
        from vscan.runtime.bank_share import open_bank

        super().__init__(config, open_bank(bank, config), offcentre=False)
