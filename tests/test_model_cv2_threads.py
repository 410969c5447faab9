"""The model stage runs OpenCV (the rotation search's resizes and turns) on its own thread count, as it runs numba's
kernels and the hash model: OpenCV's default pool (every core) cost 2x the CPU for the same pixels on 2 cores (issue #30)."""

import pytest


def test_model_calls_limit_opencvs_pool():
    cv2 = pytest.importorskip("cv2")
    from vscan.runtime.model_actor import _limit_kernel_threads

    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(2)
        _limit_kernel_threads(1)
        assert cv2.getNumThreads() == 1
        _limit_kernel_threads(0)  # 0: one thread, as numba's limit takes it
        assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(before)
