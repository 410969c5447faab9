"""Hostile evidence for the reliability tests: ``make_hostile(folder, clip)``.

What seized media and suspects produce and generated test media never does:
names that are not UTF-8 or carry NUL and control characters (in folders,
tars and zips), archive headers that lie (a PAX header declaring gigabytes,
sparse members, a zip whose end record under-counts its entries), and trees
deeper than any recursion allows. Every case is built here, from ``clip``
(a small valid video from vscan.bench.synth) and bytes written by hand; none
needs a download. Each names the record a scan must give it (docs/hostile-evidence.md).

    python -m vscan.bench.hostile OUT_DIR     # writes them and lists them
"""

from __future__ import annotations

import io
import os
import struct
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HostileCase", "blank_clip", "make_hostile", "raw_path", "remove_tree", "DEEP_LEVELS"]

#: Folder levels of the deep-tree case: deeper than Python's recursion limit.
DEEP_LEVELS = 1200


@dataclass(frozen=True)
class HostileCase:
    """One input a scan must give exactly one honest record."""

    name: str  # what the case is
    path: bytes  # the record's raw path, relative to the folder (``!/`` then the member, for archive members)
    status: str  # "ok" or "error"
    error_type: str | None = None  # the record's error.type when status is "error"
    note: str = ""
    on_disk: bytes = b""  # its top-level entry in the folder, when the path does not start with it (an escaped ``!``)

    @property
    def top(self) -> bytes:
        """The folder entry (file or sub-folder) this case lives in."""
        return self.on_disk or self.path.split(b"!/")[0].split(b"/")[0]


def raw_path(folder: str | os.PathLike, case: HostileCase) -> bytes:
    """The raw bytes a record's path must hold for ``case`` under ``folder``."""
    return os.fsencode(os.path.abspath(folder)) + b"/" + case.path


def _tar_member(tf: tarfile.TarFile, name: str, data: bytes, **pax: str) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    if pax:
        info.pax_headers = dict(pax)
    tf.addfile(info, io.BytesIO(data))


def _pax_header_bomb(path: Path, declared_bytes: int, filled_bytes: int = 64 << 10) -> None:
    """A gzip'ed tar whose first entry is a PAX extended header that declares
    ``declared_bytes`` of header data, ``filled_bytes`` of them really there
    (zeros: ~1 KiB of gzip per MiB): tarfile would read the whole header
    into memory in one read before any check could see it."""
    import gzip

    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = declared_bytes
    block = header.tobuf(format=tarfile.GNU_FORMAT)  # base-256 size: any declared size
    mib = gzip.compress(b"\0" * (1 << 20), compresslevel=9, mtime=0)
    with open(path, "wb") as fh:
        # gzip members concatenated are one stream: 1 MiB of zeros compressed once, repeated
        fh.write(gzip.compress(block + b"\0" * (filled_bytes % (1 << 20)), mtime=0))
        for _ in range(filled_bytes >> 20):
            fh.write(mib)


def _sparse_tar(path: Path, clip: bytes, *, members: int, declared_bytes: int) -> None:
    """A plain (uncompressed) tar of GNU sparse members: each declares
    ``declared_bytes`` of content (holes) in a few KiB of archive."""
    with open(path, "wb") as fh:
        for i in range(members):
            info = tarfile.TarInfo(f"sparse-{i}.mp4")
            info.type = tarfile.GNUTYPE_SPARSE
            info.size = len(clip)  # bytes stored in the archive
            block = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
            # GNU sparse header: one map entry (offset 0, numbytes len(clip)) at 386,
            # isextended 0 at 482, realsize (declared content) at 483.
            block[386:398] = tarfile.itn(0, 12, tarfile.GNU_FORMAT)
            block[398:410] = tarfile.itn(len(clip), 12, tarfile.GNU_FORMAT)
            block[482] = 0
            block[483:495] = tarfile.itn(declared_bytes, 12, tarfile.GNU_FORMAT)  # base-256 past 8 GiB
            block[148:156] = b" " * 8
            block[148:156] = b"%06o\0 " % sum(block)
            fh.write(bytes(block))
            fh.write(clip + b"\0" * (-len(clip) % 512))
        fh.write(b"\0" * 1024)


def _lying_zip(path: Path, clip: bytes, entries: int) -> None:
    """A zip whose central directory holds ``entries`` entries while its end
    record says 1 (the entry limit must count the directory walked)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("first.mp4", clip)
        for i in range(entries - 1):
            zf.writestr(f"e{i:06d}.txt", b"")
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 1, 1)  # entries on this disk, entries in all
    path.write_bytes(bytes(data))


def _deep_tree(root: Path, clip: bytes, levels: int) -> bytes:
    """``levels`` nested folders, a clip at the bottom; returns its relative path."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(levels):
            os.mkdir("d", dir_fd=fd)
            nxt = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        out = os.open("bottom.mp4", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, clip)
        os.close(out)
    finally:
        os.close(fd)
    return b"/".join([b"d"] * levels + [b"bottom.mp4"])


def blank_clip(path: str | os.PathLike, *, seconds: float = 2.0, size: tuple[int, int] = (96, 64)) -> Path:
    """A video of one flat grey: it decodes, and no frame of it reaches PDQ's
    matchable quality (nothing in it can be compared with a bank)."""
    import numpy as np

    from vscan.bench.encoding import _encode

    fps = 25.0
    frame = np.full((size[1], size[0], 3), 128, np.uint8)
    return _encode(Path(path), (frame for _ in range(int(seconds * fps))), fps=fps, codec="libx264", gop=None, crf=None,
                   bitrate=None, faststart=False)  # fmt: skip


def remove_tree(path: str | os.PathLike) -> None:
    """Remove a folder however deep or long its paths (shutil.rmtree recurses
    and uses whole paths; coreutils rm walks by file descriptor). What is left
    would trip os.walk over /tmp in other tests."""
    import subprocess

    subprocess.run(["rm", "-rf", "--", os.fspath(path)], check=True)


def make_hostile(folder: str | os.PathLike, clip: str | os.PathLike, *, deep_levels: int = DEEP_LEVELS,
                 bomb_bytes: int = 8 << 30) -> list[HostileCase]:  # fmt: skip
    """Write every case into ``folder`` (created); ``clip`` is a small valid video."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    data = Path(clip).read_bytes()
    cases: list[HostileCase] = []

    latin1 = b"caf\xe9-latin1.mp4"  # a Latin-1 name, as FAT/ISO media from other locales hold
    with open(os.path.join(os.fsencode(root), latin1), "wb") as fh:
        fh.write(data)
    cases.append(HostileCase("latin-1 file name", latin1, "ok"))

    control = b"tab\tnew\nline.mp4"
    with open(os.path.join(os.fsencode(root), control), "wb") as fh:
        fh.write(data)
    cases.append(HostileCase("control characters in a file name", control, "ok"))

    with tarfile.open(root / "names.tar", "w", format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape") as tf:
        _tar_member(tf, "x", data, path="nul\x00name.mp4")  # NUL only a PAX header can carry
        _tar_member(tf, "member-\udce9.mp4", data)  # Latin-1 bytes, raw in the PAX header
        _tar_member(tf, "plain.mp4", data)
    cases += [
        HostileCase("NUL in a tar member name", b"names.tar!/nul\x00name.mp4", "error", "ArchiveMemberError", "path traversal (NUL in name)"),
        HostileCase("latin-1 tar member name", b"names.tar!/member-\xe9.mp4", "ok"),
        HostileCase("plain member beside them", b"names.tar!/plain.mp4", "ok"),
    ]

    with zipfile.ZipFile(root / "names.zip", "w") as zf:
        zf.writestr("bell\x07.mp4", data)
    cases.append(HostileCase("control character in a zip member name", b"names.zip!/bell\x07.mp4", "ok"))

    _pax_header_bomb(root / "pax-bomb.tar.gz", bomb_bytes, filled_bytes=min(bomb_bytes, 1 << 30))
    cases.append(HostileCase("PAX header declaring gigabytes", b"pax-bomb.tar.gz", "error", "ArchiveError"))

    sparse_bytes = 512 << 20  # under archive_member_max_bytes: only the ratio of holes to stored bytes refuses it
    _sparse_tar(root / "sparse.tar", data, members=3, declared_bytes=sparse_bytes)
    cases += [HostileCase(f"sparse member {i} declaring {sparse_bytes} bytes in {len(data)}", b"sparse.tar!/sparse-%d.mp4" % i,
                          "error", "ArchiveMemberError", "decompression bomb") for i in range(3)]  # fmt: skip

    _lying_zip(root / "lying.zip", data, entries=300)
    cases.append(HostileCase("zip end record counting 1 of 300 entries", b"lying.zip", "error", "ArchiveError",
                             "with archive_max_entries below 300; else its one media member is ok"))  # fmt: skip

    # The member separator "!/" in real names: a tar inside a folder named like a zip plus "!", a zip member
    # whose name holds "!/", a file in such a folder with no zip beside it (vscan.inputs.containers.member_path)
    (root / "case.zip!").mkdir()
    with tarfile.open(root / "case.zip!" / "inner.tar", "w") as tf:
        _tar_member(tf, "m.mp4", data)
    with zipfile.ZipFile(root / "bang.zip", "w") as zf:
        zf.writestr("a.tar!/c.mp4", data)
    (root / "wow.zip!").mkdir()
    (root / "wow.zip!" / "b.mp4").write_bytes(data)
    with zipfile.ZipFile(root / "x.zip", "w") as zf:  # beside a folder x.zip! holding a file of the member's name
        zf.writestr("b.mp4", data)
    (root / "x.zip!").mkdir()
    (root / "x.zip!" / "b.mp4").write_bytes(data)
    cases += [
        HostileCase("a tar in a folder named case.zip!", b"case.zip!!/inner.tar!/m.mp4", "ok", on_disk=b"case.zip!",
                    note="the '!' before '/' written twice in a member path"),
        HostileCase("a zip member named a.tar!/c.mp4", b"bang.zip!/a.tar!!/c.mp4", "ok"),
        HostileCase("a file in a folder named wow.zip! (no wow.zip)", b"wow.zip!/b.mp4", "ok"),
        HostileCase("member b.mp4 of x.zip", b"x.zip!/b.mp4", "ok"),
        HostileCase("a file x.zip!/b.mp4 beside x.zip", b"x.zip!!/b.mp4", "error", "FileAccessError", on_disk=b"x.zip!",
                    note="its path is the member's: recorded under the escaped path, not scanned"),
    ]

    blank_clip(root / "blank-grey.mp4")
    cases.append(HostileCase("a flat grey video (no frame of matchable quality)", b"blank-grey.mp4", "ok",
                             note="unchecked: risk null, never a clear 0"))  # fmt: skip

    if deep_levels:
        (root / "deep").mkdir()
        from vscan.inputs.paths import MAX_DIR_DEPTH

        _deep_tree(root / "deep", data, deep_levels)
        # "deep" is one level below the folder: the first folder past the cap is its MAX_DIR_DEPTH-th "d"
        stop = b"deep/" + b"/".join([b"d"] * MAX_DIR_DEPTH)
        cases.append(HostileCase(f"{deep_levels} nested folders", stop, "error", "FileAccessError",
                                 "the first folder past the walk's depth cap: not walked"))  # fmt: skip
    return cases


#: The measuring child's start: ``hwm()``, this process's own peak RSS in KiB (VmHWM).
_HWM = """
import sys
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
"""


def _measured(code: str, arg: str) -> list[str]:
    """The last line's fields printed by ``code`` run with ``arg`` in a fresh interpreter."""
    import subprocess

    run = subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True, check=True)
    return run.stdout.split()


def measure_listing(folder: str | os.PathLike, names: list[str]) -> dict[str, tuple[float, float]]:
    """(peak RSS, its growth past the imports), MiB, of listing each container and reading its members
    as a scan's worker would (vscan.inputs.archives), each in a fresh
    interpreter; ``names`` relative to ``folder``. Peaks are VmHWM, the process's own: Linux's
    ru_maxrss carries the parent's peak across fork and exec."""
    code = _HWM + """
from vscan.inputs.archives import ArchiveLimits, archive_error, iter_member_paths, open_member, split_member
base = hwm()
limits = ArchiveLimits(max_entries=200)
for path in iter_member_paths(sys.argv[1], limits=limits):
    try:
        if split_member(path) is None:
            archive_error(path, limits)
        else:
            with open_member(path, limits) as member:
                open(member, "rb").read(1)
    except Exception:
        pass
peak = hwm()
print(peak / 1024, (peak - base) / 1024)
"""
    grown = {}
    for name in names:
        peak, growth = _measured(code, str(Path(folder) / name))[-2:]
        grown[name] = (float(peak), float(growth))
    return grown


def measure_decoding(paths: list[str | os.PathLike]) -> dict[str, tuple[float, float, int]]:
    """(peak RSS, its growth past the imports, frames sampled), MiB, of decoding each file as a
    scan's worker would (open_decoder, 1 frame/s, 256x256), each in a fresh interpreter."""
    code = _HWM + """
from vscan.decode import FixedRate, open_decoder
base = hwm()
decoder = open_decoder(sys.argv[1])
frames = sum(len(b) for b in decoder.iter_frames(sys.argv[1], FixedRate(1.0), size=(256, 256)))
peak = hwm()
print(peak / 1024, (peak - base) / 1024, frames)
"""
    out = {}
    for path in paths:
        peak, growth, frames = _measured(code, os.fspath(path))[-3:]
        out[Path(path).name] = (float(peak), float(growth), int(frames))
    return out


if __name__ == "__main__":
    from vscan.bench import synth

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = Path(args[0] if args else "hostile")
    clip_path = synth.make_clip(out.with_name(out.name + "-clip.mp4"), seed=5, seconds=1.0, size=(96, 64))
    for case in make_hostile(out, clip_path):
        print(f"{case.status:5} {case.error_type or '':20} {case.path!r}  {case.name}")
    if "--measure" in sys.argv:
        # Baseline in the same run: an ordinary tar.gz of the same clip.
        with tarfile.open(out / "baseline.tar.gz", "w:gz") as tf:
            tf.add(clip_path, "baseline.mp4")
        grown = measure_listing(out, ["baseline.tar.gz", "pax-bomb.tar.gz", "sparse.tar", "lying.zip", "names.tar"])
        base = grown["baseline.tar.gz"][0]
        for name, (peak, growth) in grown.items():
            print(f"listing + reading {name:18} peak RSS {peak:6.1f} MiB ({peak / base:.2f}x the baseline), "
                  f"{growth:6.1f} MiB past the imports")
        # Animated stills decoded as clips (vscan.decode.animated); baseline in the same run: the same clip as MP4.
        from vscan.bench.hostile_media import animated_copies

        source = synth.make_clip(out.with_name(out.name + "-hidden.mp4"), seed=11, seconds=8.0, size=(640, 360))
        copies = animated_copies(source, out / "animated")
        decoded = measure_decoding([source, *copies.values()])
        base = decoded[source.name][0]
        for name, (peak, growth, frames) in decoded.items():
            print(f"decoding {name:20} {frames:3d} frames at 1 fps, peak RSS {peak:6.1f} MiB ({peak / base:.2f}x the MP4), "
                  f"{growth:6.1f} MiB past the imports")
