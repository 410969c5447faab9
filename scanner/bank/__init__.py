"""Banks of reference hashes: the file format, writing, importing, reading, exporting.

    from vscan.bank import Bank, build_bank, export_entries

Data flow: ``importers`` (one per input format, ``IMPORTERS``) write entries
through ``writer.BankWriter``; ``store.Bank`` reads the file back (``info``,
``load_index``); ``exporters`` write a bank's rows out in the input formats.
Matching (``vscan.bank.match``, ``robust``, ``index``) is imported from its modules: the
store and importers must not load the search code.

At platform scale (``vscan bank import|lookup|disable|enable|history|compact``):
``append.append_to_bank`` imports newer lists in place (withdrawn / deleted
records disable their entries), ``updates`` disables and enables entries and
keeps their history and the content digest, ``lookup.BankLookup`` searches a
bank through its memory-mapped index (``disk_index``, kernel ``mih_kernel``)
beside it in ``BANK.vidx``, ``hash_input`` reads query hashes. Scans open
the same index memory-mapped (``mapped.MappedBank``) instead of
``load_index``: each file is matched against the entries it can match.
One read path: the index holds row ids, ``row_table.RowTable`` (written by
``mapped_build`` into ``BANK.vidx/scan``) says what each row is for lookups,
``vscan serve`` and scans alike, and ``entry_table`` is the one reader of
entries' labels, kinds and durations, at match time. A scan's matcher gets a
``store.BankIndex`` of the entries a file can match (``MappedBank.narrow``),
or of the whole bank where no index can be written (``load_index``).
"""

from vscan.bank.exporters import EXPORTERS, export_entries
from vscan.bank.importers import IMPORTERS, detect_input_type, import_file
from vscan.bank.schema import FORMAT_VERSION
from vscan.bank.store import Bank, BankIndex, BankInfo, ExtraRows, build_bank
from vscan.bank.writer import BankWriter, write_bank

__all__ = [
    "FORMAT_VERSION",
    "Bank",
    "BankInfo",
    "BankIndex",
    "ExtraRows",
    "BankWriter",
    "build_bank",
    "write_bank",
    "IMPORTERS",
    "import_file",
    "detect_input_type",
    "EXPORTERS",
    "export_entries",
]
