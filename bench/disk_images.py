"""Small disk images built with Debian's own tools, for the tests and the disk image bench.

Nothing is mounted: file systems are made and filled offline (``mkntfs`` +
``ntfscp``, ``mkfs.vfat`` + ``mtools``, ``mkfs.ext4 -d``), partition tables
written by ``sfdisk`` (MBR) and ``sgdisk`` (GPT), partitions copied into the
disk with ``dd``, and E01 files made by ``ewfacquire``. Debian packages:
ntfs-3g, dosfstools, mtools, e2fsprogs, fdisk, gdisk, ewf-tools.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["TOOLS", "missing_tools", "ntfs_volume", "fat32_volume", "ext4_volume", "mbr_disk", "gpt_disk", "to_e01"]

#: Tool -> Debian package.
TOOLS = {
    "mkntfs": "ntfs-3g", "ntfscp": "ntfs-3g", "mkfs.vfat": "dosfstools", "mmd": "mtools", "mcopy": "mtools",
    "mkfs.ext4": "e2fsprogs", "sfdisk": "fdisk", "sgdisk": "gdisk", "ewfacquire": "ewf-tools",
}  # fmt: skip
_MIB = 1 << 20
_SECTOR = 512


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        raise FileNotFoundError(f"{name} not found (Debian package {TOOLS[name]})")
    return found


def missing_tools() -> list[str]:
    """``tool (package)`` for each tool not installed."""
    return [f"{t} ({p})" for t, p in TOOLS.items() if shutil.which(t) is None and shutil.which(t, path="/usr/sbin:/sbin") is None]


def _run(*args: str, stdin: str | None = None) -> None:
    subprocess.run([_tool(args[0]), *args[1:]], input=stdin, text=True, check=True, capture_output=True)


def ntfs_volume(path: Path, files: dict[str, Path], mib: int = 6) -> Path:
    """An NTFS volume holding ``files`` (name in the root -> source); ntfscp
    writes into existing folders only, so names are flat."""
    with open(path, "wb") as fh:
        fh.truncate(mib * _MIB)
    _run("mkntfs", "-F", "-Q", "-q", "-s", "512", "-c", "4096", str(path))
    for name, src in files.items():
        if "/" in name:
            raise ValueError(f"{name}: ntfscp cannot create folders")
        _run("ntfscp", "-q", str(path), str(src), name)
    return path


def fat32_volume(path: Path, files: dict[str, Path], mib: int = 34) -> Path:
    """A FAT32 volume (34 MiB: FAT32's fewest clusters at 512 bytes a cluster) holding ``files``."""
    with open(path, "wb") as fh:
        fh.truncate(mib * _MIB)
    _run("mkfs.vfat", "-F", "32", "-s", "1", str(path))
    folders = sorted({str(Path(n).parents[i]) for n in files for i in range(len(Path(n).parents) - 1)}, key=len)
    for folder in folders:
        _run("mmd", "-i", str(path), f"::/{folder}")
    for name, src in files.items():
        _run("mcopy", "-i", str(path), str(src), f"::/{name}")
    return path


def ext4_volume(path: Path, files: dict[str, Path], mib: int = 4, links: dict[str, str] | None = None) -> Path:
    """An ext4 volume holding ``files`` and symbolic ``links`` (name -> target), filled by ``mkfs.ext4 -d``."""
    staging = path.with_name(path.name + ".d")
    for name, src in files.items():
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, staging / name)
    for name, target in (links or {}).items():
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, staging / name)
    try:
        _run("mkfs.ext4", "-q", "-F", "-d", str(staging), str(path), f"{mib}M")
    finally:
        shutil.rmtree(staging)
    return path


def _place(disk: Path, volumes: list[Path | int], start_mib: int = 1) -> list[tuple[int, int]]:
    """(start sector, sectors) of each volume laid one after another from ``start_mib``;
    an int is an empty partition of that many MiB."""
    spans, sector = [], start_mib * _MIB // _SECTOR
    for vol in volumes:
        size = vol * _MIB if isinstance(vol, int) else vol.stat().st_size
        spans.append((sector, size // _SECTOR))
        sector += size // _SECTOR
    with open(disk, "wb") as fh:
        fh.truncate(sector * _SECTOR + 2 * _MIB)  # room for GPT's backup table
    return spans


def _copy_in(disk: Path, volumes: list[Path | int], spans: list[tuple[int, int]]) -> None:
    with open(disk, "r+b") as out:
        for vol, (start, _) in zip(volumes, spans):
            if isinstance(vol, int):
                continue
            with open(vol, "rb") as src:
                out.seek(start * _SECTOR)
                while block := src.read(_MIB):
                    if block.count(0) == len(block):
                        out.seek(len(block), os.SEEK_CUR)  # keep the disk sparse
                    else:
                        out.write(block)


def mbr_disk(path: Path, volumes: list[Path | int], types: list[str]) -> Path:
    """A raw disk with an MBR (DOS) partition table, one primary partition
    per volume (``types``: MBR type bytes in hex, e.g. "7" NTFS, "c" FAT32)."""
    spans = _place(path, volumes)
    table = "label: dos\n" + "".join(f"start={s}, size={n}, type={t}\n" for (s, n), t in zip(spans, types))
    _run("sfdisk", "-q", str(path), stdin=table)
    _copy_in(path, volumes, spans)
    return path


def gpt_disk(path: Path, volumes: list[Path | int], types: list[str]) -> Path:
    """A raw disk with a GPT partition table (``types``: sgdisk type codes, e.g. "0700", "8300")."""
    spans = _place(path, volumes)
    args = []
    for i, ((start, count), code) in enumerate(zip(spans, types), 1):
        args += [f"-n{i}:{start}:{start + count - 1}", f"-t{i}:{code}"]
    _run("sgdisk", *args, str(path))
    _copy_in(path, volumes, spans)
    return path


def to_e01(raw: Path, target: Path, *, segment_mib: int | None = None, compression: str = "fast") -> Path:
    """``target``.E01 (and .E02, ... when ``segment_mib`` splits it) made by ewfacquire from ``raw``."""
    args = ["-u", "-t", str(target), "-f", "encase6", "-c", compression, "-C", "case", "-D", "synthetic test disk", "-e", "vscan", "-E", "1", "-N", "-"]
    if segment_mib:
        args += ["-S", f"{segment_mib}MiB"]
    _run("ewfacquire", *args, str(raw))
    return target.with_name(target.name + ".E01")
