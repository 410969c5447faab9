"""A sparse entry's crop rows as a query-side crop meets them (``vscan.bank.robust``; docs/banks.md).

A ``--rows sparse`` bank keeps its crop rows on a few detailed ticks (``vscan.bank.rows.detail_ticks``), not on every
frame: a copy that only the scan's own crops or turned-back cuts can meet (``vscan.bank.query_side``,
``vscan.runtime.rotation_search``) meets those rows and no others. ``crop_rows_met`` says how many of them it met
(compared%); ``crop_rows_held`` how many the entry holds at all, which bounds the frames such a match can show.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vscan.bank.prepared import _csr, _prepare
from vscan.bank.row_looks import LOOK_MIN_RANGE_SECONDS
from vscan.bank.store import BankIndex

#: ``vscan.bank.robust._RobustBank``: the rows of a bank as the robust matcher searches them (``row_pos``, ``row_prep``, ``prep_names``).
_RobustBank = Any

__all__ = ["CROP_ROWS_MIN", "CROP_ROWS_OFFSET_SECONDS", "crop_rows_held", "crop_rows_met"]

#: Crop rows a query-side crop meets (within ``short_max_distance``, at one offset) before ``crop_rows_met`` counts them.
CROP_ROWS_MIN = 2
#: Met crop rows' offsets (query time - row time) within this of the closest pair's (a frame at 30 fps is 0.033 s).
CROP_ROWS_OFFSET_SECONDS = 0.02


def _rows_by_entry(index: BankIndex, bank: _RobustBank, min_quality: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR of the robust bank's rows by entry (offsets [E + 1], rows), once per index."""
    key = ("robust.rows_by_entry", min_quality)
    if key not in index.cache:
        entry = np.asarray(index.entry_rows[_prepare(index, min_quality).frames[bank.row_pos]], np.int64)
        index.cache[key] = _csr(entry, len(index.entry_ids))
    return index.cache[key]


def crop_rows_met(index: BankIndex, bank: _RobustBank, entry: int, prep: np.ndarray, row_time: np.ndarray, query_time: np.ndarray,
                  bits: np.ndarray, max_bits: int, min_quality: int) -> float:  # fmt: skip
    """compared% over one crop scale's rows of a sparse entry, from pairs on crop rows (``prep``: codes into
    ``bank.prep_names``; the rows' frame times, the query frames' times, bits): of the entry's frames holding a row
    of the scale the closest pair met, the share met within ``max_bits`` at the closest pair's offset
    (``CROP_ROWS_OFFSET_SECONDS``, rate 1); 0 under ``CROP_ROWS_MIN`` met, or where the scale's rows are under
    ``row_looks.LOOK_MIN_RANGE_SECONDS`` apart (a full bank's rows of every frame: query% judges those).
    A sparse bank keeps crop rows on a few detailed ticks (``vscan.bank.rows.detail_ticks``: ``doorknob``, 4 s and
    flat after 2 s, at 0 and 1 s); a copy cropped between two bank scales meets them only through the scan's own
    crops (``vscan.bank.query_side``), and its other frames, between those rows, count against query%."""
    ok = bits <= max_bits
    found = _closest_scale(index, bank, entry, prep, bits, max_bits, min_quality) if ok.sum() >= CROP_ROWS_MIN else None
    if found is None:
        return 0.0
    k, times = found
    on = ok & (prep == prep[k]) & (np.abs((query_time - row_time) - (query_time[k] - row_time[k])) <= CROP_ROWS_OFFSET_SECONDS)
    met = np.unique(row_time[on])
    if met.size < CROP_ROWS_MIN:
        return 0.0
    return 100.0 * float(met.size) / float(times.size)


def _closest_scale(index: BankIndex, bank: _RobustBank, entry: int, prep: np.ndarray, bits: np.ndarray, max_bits: int,
                   min_quality: int) -> tuple[int, np.ndarray] | None:  # fmt: skip
    """(the closest pair within ``max_bits``, the times of ``entry``'s frames holding a row of its crop scale), or None where
    no pair is that close, or the scale has under ``CROP_ROWS_MIN`` rows or rows under ``row_looks.LOOK_MIN_RANGE_SECONDS``
    apart (a full bank's rows of every frame)."""
    ok = bits <= max_bits
    if not ok.any():
        return None
    k = int(np.flatnonzero(ok)[np.argmin(bits[ok])])
    times = _scale_times(index, bank, entry, int(prep[k]), min_quality)
    if times.size < CROP_ROWS_MIN or np.median(np.diff(times)) < LOOK_MIN_RANGE_SECONDS:
        return None
    return k, times


def _scale_times(index: BankIndex, bank: _RobustBank, entry: int, prep: int, min_quality: int) -> np.ndarray:
    """The times of ``entry``'s frames holding a row of crop scale ``prep`` (a code into ``bank.prep_names``), sorted."""
    offsets, rows = _rows_by_entry(index, bank, min_quality)
    mine = rows[offsets[entry] : offsets[entry + 1]]
    return np.unique(index.timestamps_seconds[_prepare(index, min_quality).frames[bank.row_pos[mine[bank.row_prep[mine] == prep]]]])


def crop_rows_held(index: BankIndex, bank: _RobustBank, entry: int, prep: np.ndarray, bits: np.ndarray, max_bits: int, min_quality: int) -> int | None:
    """How many of a sparse entry's frames hold a row of the crop scale the closest pair within ``max_bits`` met (pairs on
    crop rows: ``prep`` codes, ``bits``): all a query-side crop of a copy can meet there, however many frames it samples.
    None where no pair is that close or the scale's rows are under ``row_looks.LOOK_MIN_RANGE_SECONDS`` apart (a
    full bank's: a row of every frame)."""
    found = _closest_scale(index, bank, entry, prep, bits, max_bits, min_quality)
    return None if found is None else int(found[1].size)
