"""A bank for scans, memory-mapped: no row is loaded until a query finds it.

    bank = MappedBank.open("stopncii.bank")      # BANK.vidx + BANK.vidx/scan, memory-mapped
    index = bank.narrow([query_hashes], 31, 50, digests=[("sha256", "ab...")])
    matches = Matcher(index).match(file_query)   # the same matches as against Bank.load_index()

``vscan.bank.lookup`` keeps the bank's frame hashes in the persisted index
``<bank>.vidx/`` and the row table behind it (``vscan.bank.row_table``: each
row's entry id, frame number, timestamp and quality, and the rows added since
it was built, the one place every read path gets rows from);
``vscan.bank.mapped_build`` writes the table's arrays and the extra rows with
their own index beside it. Entries' labels, kinds and durations are never
copied: they are read from the bank at match time (``vscan.bank.entry_table``).
Both are built once (``prepare``: by the scan's driver, before its actors start) and
opened memory-mapped by every model actor: a node's actors share one copy
through the page cache, and opening reads only the rows added since the
index was built (searched by brute force, as the lookup does) and the
disabled entries.

``narrow`` answers one file: it searches every hash the matcher will search
(at its loosest radius) in the index, the added rows and the extra rows,
and returns a ``BankIndex`` holding only the entries found (all their rows)
and the entries whose file digests the file has. The matchers' results are
per entry, each from that entry's rows alone, so matching the file against
this small index gives exactly the records the whole bank gives; disabled
entries found go into its ``disabled`` (a bank with disabled entries gets
one, as ``Bank.load_index`` does), so records still say which they skipped.
"""

from __future__ import annotations

import os
import sqlite3
from collections import OrderedDict
from pathlib import Path

import numpy as np

from vscan.bank.disk_index import SplitIndex
from vscan.bank.entry_table import EntryGeometry, KeptGeometry, entry_fields, geometry_array
from vscan.bank.index import brute_force_pairs
from vscan.bank.lookup import BankLookup, _connect, bank_generation
from vscan.bank.mapped_build import scan_dir
from vscan.bank.prepared import recent, unique_hashes
from vscan.bank.query import FileQuery, MatchSettings
from vscan.bank.store import BankIndex, file_extra_rows
from vscan.bank.updates import disabled_ids, has_table
from vscan.errors import BankError

__all__ = ["MappedBank", "prepare", "bank_snapshot", "narrow_for_query"]


#: Rows (frames and extra rows) of recently matched entries an open bank keeps as arrays (MappedBank._entry_rows): ~60 B each.
_CACHED_ROWS = 1 << 19
#: Candidate sets whose BankIndex (arrays and derived search structures) an open bank keeps (MappedBank._subset).
_CACHED_SUBSETS = 8
#: Query hashes whose candidate entries an open bank keeps (MappedBank.candidates): ~100 B each.
_KEPT_HASHES = 1 << 15
_KEPT_LOOKUPS = 128  # whole lookups of searches (candidates(keep=False)) kept, the last ones: ~5 an unmatched file
_EXTRA_FILES = ("extra_frame", "extra_prep", "extra_quality", "extra_offsets")


def prepare(bank_path: str | os.PathLike, *, build: bool = True) -> dict:
    """Builds what a scan opens, where missing or out of date: the index
    (``vscan.bank.lookup``) and the scan arrays beside it. Returns the index's
    identity (``index.json``), which every actor checks. ``build=False``:
    writes nothing; BankError unless both are already up to date."""
    with BankLookup.open(bank_path, build=build) as lookup:  # the index and its row table, the scan arrays among them
        return dict(lookup.index.meta)


def bank_snapshot(bank_path: str | os.PathLike) -> dict:
    """The bank as it is now, for a whole scan (``MappedBank(snapshot=...)``): its lineage and
    generation, the last rowid of each table and the disabled entries. Every actor opened with it
    sees these rows and this enabled state, also one restarted after the bank was imported into
    or had entries disabled; a bank rebuilt since (another lineage) is refused."""
    conn = _connect(Path(bank_path))
    try:
        with conn:
            conn.execute("BEGIN")  # one read transaction: every field of the same generation
            lineage, generation = bank_generation(conn)
            last = {t: conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {t}").fetchone()[0]
                    for t in ("entries", "frame_hashes", "extra_hashes") if has_table(conn, t)}  # fmt: skip
            return {"lineage": lineage, "generation": generation, "max_rowid": last, "disabled": sorted(disabled_ids(conn))}
    finally:
        conn.close()


def narrow_for_query(bank: "MappedBank", query: FileQuery, settings: MatchSettings) -> BankIndex:
    """``bank.narrow`` for one file as ``vscan.bank.matcher.Matcher`` will match it: its frames
    alone (vPDQ, no variants), or every version with variants (borders removed, overlay filled,
    region), all 8 variants each, at the radius the matcher searches it at. Query frames under
    ``min_quality`` are left out, as the matcher does."""
    mq, digests = settings.min_quality, [(k, query.digests.get(k)) for k in ("sha256", "md5", "sha1")]
    if not query.robust:
        fh = query.frames.hashes
        return bank.narrow([fh.hashes[fh.qualities >= mq]], settings.distance_threshold, mq, digests=digests)
    sets = [v for v in query.versions if v.variants is not None]
    return bank.narrow([v.variants[v.hashes.qualities >= mq] for v in sets], [settings.radius(v) for v in sets], mq, digests=digests)


class MappedBank:
    """A bank opened for scanning (module docstring). Counters: ``files``
    narrowed, ``candidate_entries`` and ``candidate_rows`` they held.
    ``rows_in_memory``: the rows read into this process's memory at open
    (only those added after the index was built); ``rows_mapped``: the rows
    of the memory-mapped index."""

    def __init__(self, bank_path: str | os.PathLike, *, identity: dict | None = None, snapshot: dict | None = None):
        """``identity``: the index the scan was prepared with; ``snapshot`` (``vscan.bank.mapped.bank_snapshot``):
        the bank as the scan started, read the same by every actor (the current bank without one)."""
        self.bank_path = Path(bank_path)
        self.snapshot = snapshot or bank_snapshot(self.bank_path)
        last = self.snapshot["max_rowid"]
        with BankLookup.open(self.bank_path, build=False, upto=last.get("frame_hashes", 0)) as lookup:
            self.index = lookup.index
            if identity is not None and dict(self.index.meta) != identity:
                raise BankError(f"{self.bank_path}: its index changed since the scan started")
            if bank_generation(lookup._conn)[0] != self.snapshot["lineage"]:
                raise BankError(f"{self.bank_path}: the bank was rebuilt since the scan started (another lineage); scan again")
            #: the generation every match of this bank is of (the scan's snapshot)
            self.generation: str | None = self.snapshot["generation"]
            #: the frame rows behind the index, the delta up to the snapshot among them (vscan.bank.row_table)
            self.rows = lookup.table
            self.rows.load_delta_columns(lookup._conn)  # a scan narrows by the delta's entries file after file: read once, here
            self.info = self.rows.info
            self.num_entries = self.rows.num_entries
            self.extra_index, self.x = None, {}
            if self.info["extra_rows"]:
                folder = scan_dir(self.index)
                self.extra_index = SplitIndex.open(folder / "extra")
                self.x = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in _EXTRA_FILES}
            self.preps = list(self.info["preps"])
            self._read_extra_added(lookup._conn)
            off = set(self.snapshot["disabled"])
        self.has_disabled, self._off = bool(off), off
        self.disabled = np.zeros(self.num_entries + len(self.new_entries), bool)
        for entry_id in off:
            e = self._entry_of(entry_id, add=False)
            if e is not None:
                self.disabled[e] = True
        self.files = self.candidate_entries = self.candidate_rows = 0
        self._conn: sqlite3.Connection | None = None
        self._rows_cache: OrderedDict[int, tuple] = OrderedDict()  # entry -> its rows as arrays (_entry_rows), most recent last
        self._cached_rows = 0
        self._subsets: OrderedDict[tuple, tuple] = OrderedDict()  # candidate entries -> their index's arrays and cache (_subset)
        self._kept_candidates: dict[tuple, np.ndarray] = {}  # (radius, min quality, extra only, hash) -> entries (candidates)
        self._kept_lookups: dict[tuple, np.ndarray] = {}  # (radius, min quality, extra only, all the hashes) -> entries
        self._geometry = KeptGeometry()  # entry id -> its geometry, read once per entry

    @property
    def delta_rows(self) -> int:
        return self.rows.delta_rows

    @property
    def new_entries(self) -> list[str]:
        return self.rows.new_entries

    @property
    def rows_in_memory(self) -> int:
        return self.delta_rows + int(self.xdelta_hashes.shape[0])

    @property
    def rows_mapped(self) -> int:
        return len(self.index) + (len(self.extra_index) if self.extra_index is not None else 0)

    @classmethod
    def open(cls, bank_path: str | os.PathLike, *, identity: dict | None = None, snapshot: dict | None = None) -> "MappedBank":
        return cls(bank_path, identity=identity, snapshot=snapshot)

    # -- rows added since the index was built (few: vscan bank compact folds them in)
    def _entry_of(self, entry_id: str, *, add: bool = True) -> int | None:
        return self.rows.entry_of(entry_id, add=add)

    def _read_extra_added(self, conn: sqlite3.Connection) -> None:
        """The extra rows added since the scan arrays were written, up to the snapshot (frame rows: the row table)."""
        extra = []
        if has_table(conn, "extra_hashes"):
            extra = conn.execute("SELECT entry_id, frame_number, prep, coalesce(quality, 100), hash FROM extra_hashes "
                                 "WHERE rowid > ? AND rowid <= ?",
                                 (int(self.info["extra_max_rowid"]), self.snapshot["max_rowid"].get("extra_hashes", 0))).fetchall()  # fmt: skip
        for r in extra:
            if r[2] not in self.preps:
                self.preps.append(r[2])
        self.xdelta_entry = np.asarray([self._entry_of(r[0]) for r in extra], np.int64)
        self.xdelta_frame = np.asarray([r[1] for r in extra], np.int64)
        self.xdelta_prep = np.asarray([self.preps.index(r[2]) for r in extra], np.int64)
        self.xdelta_quality = np.asarray([r[3] for r in extra], np.int64)
        self.xdelta_hashes = np.frombuffer(b"".join(r[4] for r in extra), np.uint8).reshape(len(extra), 32)

    # -- per file
    def entry_id(self, e: int) -> str:
        return self.rows.entry_id(e)

    def _digest_entries(self, digests) -> tuple[dict, list[int]]:
        """(algorithm, digest) -> entry ids, and their entries, for the file's digests (the bank's primary key)."""
        if not any(d for _, d in digests):
            return {}, []
        self._db()
        found: dict = {}
        for algorithm, digest in digests:
            if digest:
                key = (algorithm, digest.strip().lower())
                sql = ("SELECT d.entry_id FROM file_digests d JOIN entries e ON e.entry_id = d.entry_id "
                       "WHERE d.algorithm = ? AND d.digest = ? AND e.rowid <= ? ORDER BY d.entry_id")
                if ids := [e for (e,) in self._conn.execute(sql, (*key, self.snapshot["max_rowid"].get("entries", 0)))]:
                    found[key] = ids
        entries = [self._entry_of(e) for ids in found.values() for e in ids]
        return found, [e for e in entries if e is not None]

    def candidates(self, queries: np.ndarray, radius: int, min_quality: int, *, extra_only: bool = False, keep: bool = True) -> np.ndarray:
        """Entries holding a row (frame or extra row, quality >= ``min_quality``) within ``radius`` of a query (``extra_only``:
        of the bank-side windows' own index alone). Each hash's entries are kept for the next search (up to _KEPT_HASHES
        hashes): a confirmation is narrowed again with its first pass's hashes (~40% of its narrowing, issue #30).
        ``keep`` False: a search's own hashes (gate boxes, windows) not kept one by one, the whole lookup kept instead."""
        queries = np.ascontiguousarray(queries, np.uint8).reshape(-1, 32)
        if not keep:  # a whole lookup repeated (a duplicate file's searches) is answered again: one entry a lookup
            make = lambda: np.unique(self._candidate_pairs(queries, radius, min_quality, extra_only=extra_only)[1])  # noqa: E731
            return recent(self._kept_lookups, (int(radius), int(min_quality), bool(extra_only), queries.tobytes()), make, _KEPT_LOOKUPS)
        setting = (int(radius), int(min_quality), bool(extra_only))
        keys = [(*setting, q) for q in map(bytes, queries)]
        kept = self._kept_candidates
        todo = [i for i, key in enumerate(keys) if key not in kept]
        if todo:
            if len(kept) + len(todo) > _KEPT_HASHES:
                kept.clear()  # this search's own hashes that were kept go too: all are searched
                todo = list(range(len(keys)))
            q, entries = self._candidate_pairs(queries[todo], radius, min_quality, extra_only=extra_only)
            base = int(entries.max()) + 1 if entries.size else 1
            q, entries = np.divmod(np.unique(q * base + entries), base)  # by query, each query's entries once
            # Each query's slice; most have none: one shared empty array, not np.split's hundreds of pieces (issue #30).
            bounds = np.searchsorted(q, np.arange(len(todo) + 1)).tolist()
            none = entries[:0]
            for j, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
                kept[keys[todo[j]]] = entries[lo:hi] if hi > lo else none
        found = [kept[key] for key in keys]
        return np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)

    def _candidate_pairs(self, queries: np.ndarray, radius: int, min_quality: int, *, extra_only: bool) -> tuple[np.ndarray, np.ndarray]:
        """(query index, entry) of every row within ``radius`` of a query (``candidates``), with repeats."""
        found, owner = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        if len(queries) and not extra_only:
            q, row, _ = self.index.search(queries, radius)
            rows = self.rows
            ok = rows.a["row_quality"][row] >= min_quality
            found.append(np.asarray(rows.a["row_entry"][row[ok]], np.int64))
            owner.append(np.asarray(q[ok], np.int64))
            if rows.delta_rows:
                q, b, _ = brute_force_pairs(queries, rows.delta_hashes, radius)
                ok = rows.delta_quality[b] >= min_quality
                found.append(np.asarray(rows.delta_entry[b[ok]], np.int64))
                owner.append(np.asarray(q[ok], np.int64))
        if len(queries):
            if self.extra_index is not None:
                q, x, _ = self.extra_index.search(queries, radius)
                ok = self.x["extra_quality"][x] >= min_quality
                offsets = self.x["extra_offsets"]
                found.append(np.asarray(np.searchsorted(offsets, x[ok], side="right") - 1, np.int64))
                owner.append(np.asarray(q[ok], np.int64))
            if self.xdelta_hashes.shape[0]:
                q, b, _ = brute_force_pairs(queries, self.xdelta_hashes, radius)
                ok = self.xdelta_quality[b] >= min_quality
                found.append(np.asarray(self.xdelta_entry[b[ok]], np.int64))
                owner.append(np.asarray(q[ok], np.int64))
        return np.concatenate(owner), np.concatenate(found)

    def narrow(self, queries: list[np.ndarray], radius: int | list[int], min_quality: int, *, digests=(), extra_only: bool = False,
               keep: bool = True) -> BankIndex:  # fmt: skip
        """The BankIndex of this file's candidate entries (module docstring): ``queries``: every hash the matcher
        searches (uint8 [.., 32] each); ``radius``: the loosest it searches them at (one, or one per array); ``digests``:
        (algorithm, hex) of the file; ``extra_only``: entries whose bank-side windows (not frames) hold a hit, not
        counted as a file; ``keep``: ``candidates``'."""
        radii = list(radius) if isinstance(radius, (list, tuple)) else [radius] * len(queries)
        found_entries = [np.zeros(0, np.int64)]
        for r in sorted(set(radii)):
            parts = [np.ascontiguousarray(q, np.uint8).reshape(-1, 32) for q, rq in zip(queries, radii) if rq == r]
            q = unique_hashes(np.concatenate(parts))[0]
            found_entries.append(self.candidates(q, int(r), min_quality, extra_only=extra_only, keep=keep))
        entries = np.unique(np.concatenate(found_entries))
        found, by_digest = self._digest_entries(digests)
        entries = np.unique(np.concatenate([entries, np.asarray(by_digest, np.int64)]))
        self.files += not extra_only
        self.candidate_entries += int(entries.size)
        n = self.disabled.size
        off = np.asarray([self.disabled[e] if e < n else self.entry_id(e) in self._off for e in entries.tolist()], bool)
        index = self._subset(entries[~off], found)
        if self.has_disabled:
            index.disabled = self._subset(entries[off], found)
        return index

    def _rows_of(self, e: int) -> tuple[np.ndarray, ...]:
        """(hashes, frame numbers, timestamps, qualities) of entry ``e``'s frames, by frame number (the row table's)."""
        return self.rows.rows_of(e)

    def _entry_rows(self, e: int) -> tuple:
        """Entry ``e``'s frames (``_rows_of``) and extra rows (``_extras_of``) as arrays (frame numbers, preps,
        qualities, hashes), kept for the next file: an archive narrows to the same few entries file after file,
        and reading and sorting their rows again cost ~20 ms a file (issue #30). The rows are fixed while the
        bank is open (its snapshot); labels and kinds are still read at match time (``_subset``)."""
        if e in self._rows_cache:
            self._rows_cache.move_to_end(e)
            return self._rows_cache[e]
        xs = self._extras_of(e)
        extras = (np.asarray([x[0] for x in xs], np.int64), np.asarray([x[1] for x in xs], object),
                  np.asarray([x[2] for x in xs], np.int32), np.asarray([x[3] for x in xs], np.uint8).reshape(len(xs), 32))  # fmt: skip
        value = (*self._rows_of(e), extras)
        self._rows_cache[e] = value
        self._cached_rows += value[1].size + len(xs)
        while self._cached_rows > _CACHED_ROWS and len(self._rows_cache) > 1:
            _, old = self._rows_cache.popitem(last=False)
            self._cached_rows -= old[1].size + old[4][0].size
        return value

    def _extras_of(self, e: int) -> list[tuple]:
        """(frame number, prep, quality, hash) of entry ``e``'s extra rows, in (frame number, prep) order."""
        out = []
        if self.extra_index is not None and e < self.num_entries:
            lo, hi = (int(v) for v in self.x["extra_offsets"][e : e + 2])
            hashes = np.asarray(self.extra_index.hashes[lo:hi])
            # plain arrays, not memmap slices: the rows are walked one by one below (memmap's __getitem__ per row cost ~1 us each, issue #30)
            frames, preps, quals = (np.asarray(self.x[k][lo:hi]) for k in ("extra_frame", "extra_prep", "extra_quality"))
            out += [(int(f), self.preps[p], int(qu), h) for f, p, qu, h in zip(frames, preps, quals, hashes)]
        for x in np.flatnonzero(self.xdelta_entry == e):
            out.append((int(self.xdelta_frame[x]), self.preps[self.xdelta_prep[x]], int(self.xdelta_quality[x]), self.xdelta_hashes[x]))
        return sorted(out, key=lambda r: (r[0], r[1].encode())) if self.xdelta_hashes.shape[0] else out

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:  # its own connection: the actor's calls may come on another thread
            _connect(self.bank_path).close()
            self._conn = sqlite3.connect(f"file:{self.bank_path}?mode=ro", uri=True, check_same_thread=False)
        return self._conn

    def _entry_rows_now(self, ids: list[str]) -> dict[str, tuple]:
        """entry_id -> (entry_id, label, kind, duration) as the bank holds them now (``vscan.bank.entry_table``:
        nothing of an entry but its id is kept in the arrays)."""
        return {i: (f.entry_id, f.label, f.kind, f.duration_seconds) for i, f in entry_fields(self._db(), ids).items()}

    def entry_geometry(self, entry: "int | str") -> EntryGeometry | None:
        """Entry ``entry``'s (width, height, (x0, y0, x1, y1)) (``vscan.bank.entry_table.EntryGeometry``; its number in this
        bank or its id), None when it has none (a hash list's entry, a bank built before geometry was kept)."""
        entry_id = self.entry_id(int(entry)) if not isinstance(entry, str) else entry
        return self._geometry.read(self._db(), [entry_id])[entry_id]

    def _subset(self, entries: np.ndarray, digests: dict) -> BankIndex:
        ids = [self.entry_id(int(e)) for e in entries]
        now = self._entry_rows_now(ids) if ids else {}
        fields = sorted(((*now.get(i, (i, None, "", None)), int(e)) for i, e in zip(ids, entries)), key=lambda f: f[0].encode())
        durations = np.asarray([np.nan if f[3] is None else f[3] for f in fields], np.float64)
        hashes, numbers, times, quals, entry_rows, extra, cache = self._subset_rows(fields, durations)
        self.candidate_rows += int(numbers.size)
        ids = [f[0] for f in fields]
        kept = set(ids)
        return BankIndex(
            entry_ids=ids,
            labels=[f[1] for f in fields],
            kinds=[f[2] for f in fields],
            durations_seconds=durations,
            hashes=hashes,
            entry_rows=entry_rows,
            frame_numbers=numbers,
            timestamps_seconds=times,
            qualities=quals,
            digests={k: [e for e in v if e in kept] for k, v in digests.items() if any(e in kept for e in v)},
            cache=cache,
            extra=extra,
            geometry=geometry_array(geometry.values()) if any((geometry := self._geometry.read(self._db(), ids)).values()) else None,
        )

    def _subset_rows(self, fields: list[tuple], durations: np.ndarray) -> tuple:
        """The rows of the entries of ``fields`` (in index order) as the index's arrays, their extra rows and the index's
        ``cache`` (the matcher's derived structures: unique rows, their CSR, row ends), kept for the next file narrowed to
        the same entries: an archive narrows to the same few sets file after file, and building them again cost ~5 ms a
        file (issue #30). Labels and kinds are not kept (read at each narrowing); durations are checked (row ends use them)."""
        key = tuple(f[-1] for f in fields)
        kept = self._subsets.get(key)
        if kept is not None and np.array_equal(kept[0], durations, equal_nan=True):
            self._subsets.move_to_end(key)
            return kept[1]
        frames, extras = [], []
        for row, (*_, e) in enumerate(fields):
            h, f, t, qu, x = self._entry_rows(e)
            frames.append((h, f, t, qu, np.full(f.size, row, np.int32)))
            extras += [(np.full(x[0].size, row, np.int64), *x)] if x[0].size else []
        if frames:
            hashes, numbers, times, quals, entry_rows = (np.concatenate(c) for c in zip(*frames))
        else:
            hashes, numbers, times, quals, entry_rows = np.zeros((0, 32), np.uint8), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int32), np.zeros(0, np.int32)  # fmt: skip
        extra = None
        if extras:  # each extra row filed under its frame, as Bank.load_index does
            extra = file_extra_rows(entry_rows, numbers, *(np.concatenate(c) for c in zip(*extras)))
        rows = (np.ascontiguousarray(hashes, np.uint8), numbers.astype(np.int64), times.astype(np.float64), quals.astype(np.int32), entry_rows, extra, {})
        self._subsets[key] = (durations, rows)
        while len(self._subsets) > _CACHED_SUBSETS:
            self._subsets.popitem(last=False)
        return rows

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
