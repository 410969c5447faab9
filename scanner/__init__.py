"""vscan: find known videos and images again, triage the rest, one risk record per file.

    import vscan

    summary = vscan.scan(["/evidence"], bank="reported.bank", out="results.jsonl",
                         config=vscan.ScanConfig(runtime=vscan.Runtime(device="cpu")))
    for record in vscan.scan_iter(["/evidence"], bank="reported.bank", out="results.jsonl"):
        ...                                  # each record once it is durable in the sink
    bank = vscan.Bank.build("reported.bank", ["reported/"], label="reported")
    hashes = vscan.hash_file("clip.mp4")     # vPDQ frame hashes of one file
"""

from typing import TYPE_CHECKING

from vscan.version import __version__

# The names load on first use (PEP 562), not at ``import vscan``: the ``vscan``
# command lives in this package, and its first line must run before numpy and
# the rest load, so that Ctrl-C in that second exits 130 too (vscan.cli.main).
_HOMES = {
    "vscan.api": ("ScanRun", "hash_file", "scan", "scan_iter"),
    "vscan.bank.store": ("Bank", "BankInfo"),
    "vscan.config": ("Archives", "Inputs", "Matching", "Models", "Runtime", "Sampling", "ScanConfig"),
    "vscan.errors": ("ArchiveError", "ArchiveMemberError", "BankError", "ConfigError", "DecodeError",
                     "DecodeTimeoutError", "FileAccessError", "InputError", "ModelError", "UnsupportedMediaError",
                     "VscanError"),  # fmt: skip
    "vscan.runtime.summary": ("ScanSummary",),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

if TYPE_CHECKING:  # what type checkers and editors see
    from vscan.api import ScanRun, hash_file, scan, scan_iter
    from vscan.bank.store import Bank, BankInfo
    from vscan.config import Archives, Inputs, Matching, Models, Runtime, Sampling, ScanConfig
    from vscan.errors import (ArchiveError, ArchiveMemberError, BankError, ConfigError, DecodeError, DecodeTimeoutError,
                              FileAccessError, InputError, ModelError, UnsupportedMediaError, VscanError)  # fmt: skip
    from vscan.runtime.summary import ScanSummary


def __getattr__(name: str):
    """``vscan.scan``, ``from vscan import Bank``: the public name, imported from its module on first use."""
    import importlib

    if name in _HOME_OF:
        value = getattr(importlib.import_module(_HOME_OF[name]), name)
        globals()[name] = value  # once
        return value
    try:  # vscan.errors, vscan.runtime: a subpackage reached as an attribute, as when this file imported them
        return importlib.import_module(f"vscan.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"vscan.{name}":
            raise
    raise AttributeError(f"module 'vscan' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME_OF))


__all__ = [
    "__version__",
    # scanning
    "scan",
    "scan_iter",
    "ScanRun",
    "ScanSummary",
    "hash_file",
    # configuration
    "ScanConfig",
    "Sampling",
    "Matching",
    "Models",
    "Inputs",
    "Archives",
    "Runtime",
    # banks
    "Bank",
    "BankInfo",
    # errors
    "VscanError",
    "InputError",
    "FileAccessError",
    "UnsupportedMediaError",
    "DecodeError",
    "DecodeTimeoutError",
    "ArchiveError",
    "ArchiveMemberError",
    "ModelError",
    "BankError",
    "ConfigError",
]
