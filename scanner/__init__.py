"""vscan: find known videos and images again, triage the rest, one risk record per file.

    import vscan

    summary = vscan.scan(["/evidence"], bank="reported.bank", out="results.jsonl",
                         config=vscan.ScanConfig(runtime=vscan.Runtime(device="cpu")))
    for record in vscan.scan_iter(["/evidence"], bank="reported.bank", out="results.jsonl"):
        ...                                  # each record once it is durable in the sink
    bank = vscan.Bank.build("reported.bank", ["reported/"], label="reported")
    hashes = vscan.hash_file("clip.mp4")     # vPDQ frame hashes of one file
"""

from vscan.api import ScanRun, hash_file, scan, scan_iter
from vscan.bank.store import Bank, BankInfo
from vscan.config import Archives, Inputs, Matching, Models, Runtime, Sampling, ScanConfig
from vscan.errors import (
    ArchiveError,
    ArchiveMemberError,
    BankError,
    ConfigError,
    DecodeError,
    DecodeTimeoutError,
    FileAccessError,
    InputError,
    ModelError,
    UnsupportedMediaError,
    VscanError,
)
from vscan.runtime.summary import ScanSummary
from vscan.version import __version__

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
