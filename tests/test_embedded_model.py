"""The model thread of a scan without Ray (vscan.runtime.embedded_model), in-process, with a
real ModelWorker on real decoded clips: files waiting go to it in one call, and a call that
fails keeps the results of the files before the one that failed."""

from __future__ import annotations

import select
import threading

import pytest

from vscan.bank.hashers import media_hasher
from vscan.bank.store import build_bank
from vscan.bench import synth
from vscan.config import Runtime, Sampling, ScanConfig
from vscan.decode import FixedRate
from vscan.runtime.decode_task import decode_for_scan
from vscan.runtime.embedded_model import ModelThread
from vscan.runtime.model_actor import ModelWorker

_CONFIG = ScanConfig(sampling=Sampling(policy=FixedRate(1.0)), runtime=Runtime(device="cpu"))


@pytest.fixture(scope="module")
def decoded(tmp_path_factory):
    """Three decoded clips (the first and last in the bank), and the bank."""
    root = tmp_path_factory.mktemp("model-thread")
    clips = [synth.make_clip(root / f"c{seed}.mp4", seed=seed, seconds=3, size=(160, 120)) for seed in (11, 12, 13)]
    bank = root / "bank.db"
    build_bank(bank, [clips[0], clips[2]], hash_media=media_hasher(FixedRate(1.0), "cpu"))
    return [decode_for_scan(str(c), _CONFIG)[1] for c in clips], bank


class _FailsOn(ModelWorker):
    """A real worker, whose call fails whenever it carries file ``key`` (a file that breaks the model)."""

    key = 1

    def run(self, files, *payloads):
        if any(f[0] == self.key for f in files):
            raise RuntimeError(f"file {self.key} broke the model")
        return super().run(files, *payloads)


def _thread(worker_class, bank, gate: threading.Event) -> ModelThread:
    def build():
        gate.wait(60)  # every file is submitted before the worker can take a call
        return worker_class(_CONFIG, bank)

    return ModelThread(build, call_frames=10_000)


def _collect(model: ModelThread) -> list:
    out = []
    while model.pending:
        select.select([model], [], [], 60)
        out += model.results()
        model.raise_error()
    return out


def test_every_file_waiting_goes_to_the_model_in_one_call_with_the_results_of_one_file_calls(decoded):
    payloads, bank = decoded
    gate = threading.Event()
    model = _thread(ModelWorker, bank, gate)
    try:
        for key, payload in enumerate(payloads):
            model.submit(f"task{key}", (key, None, None, 1), (payload,))
        gate.set()
        got = _collect(model)
        stats = model.built().stats()
    finally:
        model.close()
    assert [task for task, _ in got] == ["task0", "task1", "task2"]
    assert stats["calls"] == 1 and stats["files"] == 3
    alone = ModelWorker(_CONFIG, bank)
    for key, (_, result) in enumerate(got):
        (one,) = alone.run([(key, None, None, 1)], payloads[key])
        assert result.key == one.key == key
        assert repr(result.matches) == repr(one.matches)  # (repr: NaN spans compare equal)
        assert list(result.qualities) == list(one.qualities)
    assert [any(m.is_match for m in r.matches) for _, r in got] == [True, False, True]


def test_a_call_that_fails_keeps_the_files_before_the_one_that_failed(decoded):
    payloads, bank = decoded
    gate = threading.Event()
    model = _thread(_FailsOn, bank, gate)
    got = []
    try:
        for key, payload in enumerate(payloads):
            model.submit(f"task{key}", (key, None, None, 1), (payload,))
        gate.set()
        with pytest.raises(RuntimeError, match="file 1 broke the model"):
            while True:
                select.select([model], [], [], 60)
                got += model.results()
                model.raise_error()
    finally:
        model.close()
    assert [task for task, _ in got] == ["task0"]  # file 0's result kept; the scan stops at file 1, as one-file calls did
    assert model.calls == 3  # the call of all three, then file 0 alone, then file 1 alone


def test_a_model_that_does_not_build_raises_its_error_in_the_scan(decoded):
    def build():
        raise RuntimeError("no model here")

    model = ModelThread(build, call_frames=10_000)
    try:
        select.select([model], [], [], 60)
        assert model.results() == []
        with pytest.raises(RuntimeError, match="no model here"):
            model.raise_error()
        with pytest.raises(RuntimeError, match="no model here"):
            model.built()
    finally:
        model.close()


class _SeesThreads(ModelWorker):
    """A real worker that notes, in each call, the thread count of every OpenBLAS the process has loaded."""

    seen: list = []

    def run(self, files, *payloads):
        from threadpoolctl import threadpool_info

        self.seen.append(tuple(i["num_threads"] for i in threadpool_info() if i["internal_api"] == "openblas"))
        return super().run(files, *payloads)


def test_a_second_scan_in_the_process_runs_its_calls_with_the_native_threads_limited_too(decoded):
    # Issue #30: the limits were restored from the closing thread, not the model thread that set them; OpenBLAS then kept
    # its own count and the next scan's model thread could not limit it (its calls ran with 2 spinning threads).
    from threadpoolctl import threadpool_limits

    def in_thread(work):
        done = []
        helper = threading.Thread(target=lambda: done.append(work()))
        helper.start()
        helper.join(60)
        return done[0]

    payloads, bank = decoded
    # A process whose BLAS would use 2 threads (a 2-core machine's default), set aside the main thread as a fresh process's is.
    before = in_thread(lambda: threadpool_limits(limits=2, user_api="blas"))
    try:
        for _ in range(2):  # two scans, one after the other
            _SeesThreads.seen = []
            model = ModelThread(lambda: _SeesThreads(_CONFIG, bank), call_frames=10_000, threads=1)
            try:
                model.built()
                for i, payload in enumerate(payloads):
                    model.submit(f"task{i}", (i, None, None, 1), (payload,))
                assert len(_collect(model)) == len(payloads)
            finally:
                model.close()
        # The second scan's calls (the first's may load a library of its own, limited after it: ModelThread._serve)
        assert _SeesThreads.seen and all(set(seen) == {1} for seen in _SeesThreads.seen), _SeesThreads.seen
    finally:
        in_thread(before.restore_original_limits)
