"""The archive bench's corpus can be made by two benches at once (the bench and an A/B reading the same cache)."""

from __future__ import annotations

import shutil
import threading

import pytest

from vscan.bench import archive_corpus, synth

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


def test_two_transcodes_of_one_copy_at_once_both_finish(tmp_path):
    src = synth.make_clip(tmp_path / "src.mp4", seed=1, seconds=2.0, size=(160, 120))
    out = tmp_path / "copy.mp4"
    variant = archive_corpus.Variant("h264", "libx264", ("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"), ".mp4")
    barrier, errors = threading.Barrier(2), []

    def run():
        barrier.wait()
        try:
            archive_corpus._transcode(src, out, variant)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []  # one shared temporary file: the second rename found it gone
    assert out.stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_packaged_checkout_leaves_its_caches_behind(tmp_path):
    """numba's caches in a checkout's __pycache__ can come from its code imported under another name; a package copy
    that took them raised "No module named '<dynamic>'" at its first model build."""
    from vscan.bench.bench_archive import package_checkout

    tree = tmp_path / "tree"
    for sub in ("scanner/bank", "kernels", "bench", "models"):
        (tree / sub).mkdir(parents=True)
    (tree / "scanner" / "bank" / "mih_numba.py").write_text("X = 1\n")
    (tree / "scanner" / "bank" / "__pycache__").mkdir()
    (tree / "scanner" / "bank" / "__pycache__" / "mih_numba.kernel-19.py311.nbi").write_bytes(b"stale")
    pkg = package_checkout(tree, tmp_path / "pkg") / "vscan"
    assert (pkg / "bank" / "mih_numba.py").exists()
    assert not (pkg / "bank" / "__pycache__").exists()
