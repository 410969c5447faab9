"""How a scan's model actors get the bank.

By default (``runtime.bank_in_memory`` false) the driver builds the bank's
persisted index and scan arrays once, where missing or out of date
(``vscan.bank.mapped.prepare``: ``<bank>.vidx/`` beside the bank), and hands
the actors a ``MappedBankRef``: the bank's path and the index's identity.
Each actor opens the index memory-mapped from that path
(``vscan.bank.mapped.MappedBank``), so a node's actors share one copy through
the page cache and nothing of the bank passes through the driver or Ray's
object store. The path must be readable on every node (a shared file
system, or the same files at the same path): the driver checks it on each
node of the cluster before the actors start (one small task per node).

Otherwise (``bank_in_memory``, a bank folder the driver cannot write the
index into, or a node that cannot read it) the bank is loaded by the driver
and put into Ray's object store once, as before: one copy per node.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vscan.config import ScanConfig
from vscan.errors import BankError

__all__ = ["MappedBankRef", "share_bank", "prepare_early", "open_bank", "bank_stats"]

#: Seconds the driver waits for a node to say whether it can read the index.
PROBE_TIMEOUT = 60.0


@dataclass(frozen=True)
class MappedBankRef:
    """What an actor needs to open the bank memory-mapped: its path, and the
    identity of the index built for this scan (``index.json``)."""

    path: str
    identity: dict
    #: the bank as the scan started (``vscan.bank.mapped.bank_snapshot``): every actor, also one
    #: restarted mid-scan, matches against these rows, this enabled state, this generation
    snapshot: dict | None = None


def _can_read(ref: MappedBankRef) -> bool:
    from vscan.bank.disk_index import SplitIndex
    from vscan.bank.lookup import index_path
    from vscan.bank.mapped_build import scan_arrays_fresh

    try:
        index = SplitIndex.open(index_path(ref.path))
    except (OSError, BankError):
        return False
    return dict(index.meta) == ref.identity and scan_arrays_fresh(index) and Path(ref.path).is_file()


def _nodes_without(ref: MappedBankRef, nodes: list[dict[str, Any]]) -> list[str]:
    """The nodes (other than the driver's) that cannot read the index at ``ref.path``."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    others = [n["node_id"] for n in nodes if n.get("node_id") and n["node_id"] != here]
    if not others:
        return []
    probe = ray.remote(num_cpus=0, max_retries=0)(_can_read)
    refs = {node: probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(ref) for node in others}
    missing = []
    for node, answer in refs.items():
        try:
            if not ray.get(answer, timeout=PROBE_TIMEOUT):
                missing.append(node)
        except Exception:  # noqa: BLE001 - a node that cannot answer cannot read it either
            missing.append(node)
    return missing


def _inside_inputs(bank_path: str | os.PathLike, inputs: list) -> str | None:
    """The scanned folder that holds the bank's folder, if any: the index is not
    written there (evidence is never modified, and the scan would find it)."""
    folder = Path(bank_path).resolve().parent
    for item in inputs:
        try:
            path = Path(item).resolve()
        except (OSError, TypeError, ValueError):
            continue
        if path.is_dir() and (folder == path or path in folder.parents):
            return str(path)
    return None


def _same_generation(bank_path: str | os.PathLike, found: str | None, expected: str | None) -> None:
    """BankError unless the bank the actors get is of the generation the scan's records are stamped with."""
    if expected is not None and found is not None and found != expected:  # None: a bank written before digests were kept
        raise BankError(f"{bank_path} changed while the scan started (generation {str(found)[:12]}, the records would say "
                        f"{expected[:12]}): run the scan again")  # fmt: skip


class _Early:
    """The mapped bank's preparation, running in a thread for one (bank, inputs, generation)."""

    def __init__(self, key: tuple, bank_path: str | os.PathLike, scanned: str | None, generation: str | None) -> None:
        self.key = key
        self.result: MappedBankRef | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(bank_path, scanned, generation), name="vscan-bank-prepare")
        self._thread.start()  # not a daemon: an index being built is finished (tmp + rename) before the process ends

    def _run(self, bank_path: str | os.PathLike, scanned: str | None, generation: str | None) -> None:
        try:
            self.result = _mapped_ref(bank_path, scanned, generation)
        except BaseException as exc:  # noqa: BLE001 - raised again in the driver's thread, by share_bank
            self.error = exc

    def take(self) -> MappedBankRef:
        self._thread.join()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


_early: _Early | None = None


def _key(bank_path: str | os.PathLike, inputs: list | tuple, generation: str | None) -> tuple:
    """What an early preparation must match to be used: the bank (and its file as it is now), inputs, generation."""
    stamp = []
    for path in (str(bank_path), f"{bank_path}-wal"):  # a write may sit in SQLite's write-ahead log
        try:
            st = os.stat(path)
            stamp.append((st.st_mtime_ns, st.st_size))
        except OSError:
            stamp.append(None)
    return (str(Path(bank_path).resolve()), tuple(stamp), tuple(str(i) for i in inputs), generation)


def prepare_early(bank_path: str | os.PathLike | None, config: ScanConfig, inputs: list | tuple = (),
                  generation: str | None = None) -> None:  # fmt: skip
    """Start the bank's index preparation (what :func:`share_bank` does before
    any Ray call) in a thread, for the next share_bank of the same bank,
    inputs and generation in this process. Nothing for no bank or ``bank_in_memory``."""
    global _early
    if bank_path is None or config.runtime.bank_in_memory:
        return
    _early = _Early(_key(bank_path, inputs, generation), bank_path, _inside_inputs(bank_path, list(inputs)), generation)


def _mapped_ref(bank_path: str | os.PathLike, scanned: str | None, generation: str | None) -> MappedBankRef:
    """The bank's index prepared (built unless ``scanned``) and its snapshot: what the actors open."""
    from vscan.bank.mapped import bank_snapshot, prepare

    identity = prepare(bank_path, build=not scanned)
    ref = MappedBankRef(str(Path(bank_path).resolve()), identity, bank_snapshot(bank_path))
    _same_generation(bank_path, ref.snapshot["generation"], generation)
    return ref


def _prepared(bank_path: str | os.PathLike, scanned: str | None, inputs: list, generation: str | None) -> MappedBankRef:
    """The early preparation's result when it was for this bank, inputs and generation; else prepared now."""
    global _early
    early, _early = _early, None
    if early is not None and early.key == _key(bank_path, inputs, generation):
        return early.take()
    return _mapped_ref(bank_path, scanned, generation)


def share_bank(bank_path: str | os.PathLike | None, config: ScanConfig, nodes: list[dict[str, Any]],
               inputs: list | tuple = (), generation: str | None = None, *, local: bool = False) -> Any:  # fmt: skip
    """What the model actors are given for the bank (module docstring): a
    MappedBankRef, the object-store ref of the loaded bank, or None without one.
    ``inputs``: the scan's paths; a bank inside a scanned folder gets no index
    written beside it (one already there and up to date is used).
    ``generation``: the bank generation the scan's records are stamped with
    (``versions.bank_sha256``); a bank changed since is refused, so every record
    names the generation it was matched against. ``local``: for a model in
    this process (vscan.runtime.embedded): no Ray, the loaded bank itself."""
    if bank_path is None:
        return None
    if not config.runtime.bank_in_memory:
        scanned = _inside_inputs(bank_path, list(inputs))
        try:
            ref = _prepared(bank_path, scanned, list(inputs), generation)
        except (OSError, sqlite3.Error) as exc:
            print(f"vscan: the bank's index cannot be written beside it ({exc}); the bank is loaded into memory instead",
                  file=sys.stderr)  # fmt: skip
        except BankError as exc:
            if not scanned:
                raise
            print(f"vscan: the bank is inside the scanned folder {scanned} and has no up-to-date index ({exc}); "
                  "nothing is written there: the bank is loaded into memory instead (run vscan bank compact "
                  "beforehand to scan it memory-mapped)", file=sys.stderr)  # fmt: skip
        else:
            missing = [] if local else _nodes_without(ref, nodes)
            if not missing:
                return ref
            print(f"vscan: {len(missing)} node(s) cannot read {ref.path}.vidx; the bank is loaded into memory and "
                  "shipped to them instead (put the bank on a path every node reads)", file=sys.stderr)  # fmt: skip
    from vscan.bank.store import Bank

    with Bank(bank_path) as bank:
        index = bank.load_index()
        _same_generation(bank_path, bank.generation, generation)
    if local:
        return index
    import ray

    return ray.put(index)


def open_bank(bank: Any, config: ScanConfig) -> Any:
    """An actor's bank: a MappedBank for a MappedBankRef or a bank path (the
    bank loaded into memory where its index cannot be written), as given otherwise."""
    if isinstance(bank, MappedBankRef):
        from vscan.bank.mapped import MappedBank

        return MappedBank.open(bank.path, identity=bank.identity, snapshot=bank.snapshot)
    if isinstance(bank, (str, os.PathLike)):
        from vscan.bank.mapped import MappedBank, prepare
        from vscan.bank.store import Bank

        if not config.runtime.bank_in_memory:
            try:
                return MappedBank.open(bank, identity=prepare(bank))
            except (OSError, sqlite3.Error):
                pass
        with Bank(bank) as opened:
            return opened.load_index()
    return bank


def bank_stats(index: Any) -> dict[str, int]:
    """An actor's bank, for its stats: rows held in its memory, rows memory-mapped."""
    from vscan.bank.mapped import MappedBank

    if isinstance(index, MappedBank):
        return {"bank_rows_in_memory": index.rows_in_memory, "bank_rows_mapped": index.rows_mapped}
    if index is None:
        return {}
    held = [index, index.disabled] if index.disabled is not None else [index]
    rows = sum(len(i) + (len(i.extra.hashes) if i.extra is not None else 0) for i in held)
    return {"bank_rows_in_memory": rows, "bank_rows_mapped": 0}
