"""Frame hashing: RGB uint8 frames in, PDQ hashes (8 dihedral variants) and
qualities out, through the ONNX hash model (default) or the torch kernels.

Both backends run the same graph and give the same bits; the ONNX one is
what the pipeline runs (onnxruntime, CUDA provider when available), the
torch one is the reference. Only the torch backend and the CUDA I/O binding
need torch (``vscan[gpu]``); on CPU, onnxruntime and numpy do everything.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from vscan.errors import ConfigError, ModelError
from vscan.hashing.pdq_ops import PDQ_MIN_SIDE, operators

__all__ = ["PDQHasher", "HashBatch", "torch_device", "onnx_providers"]

log = logging.getLogger(__name__)

Backend = Literal["onnx", "torch"]
DeviceArg = Literal["auto", "cpu", "cuda"]
_BACKENDS = ("onnx", "torch")
_DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class HashBatch:
    """``hashes`` uint8 [N, 8, 32] (dihedral variants), ``quality`` int32 [N]."""

    hashes: np.ndarray
    quality: np.ndarray

    def __post_init__(self) -> None:
        n = self.quality.shape[0]
        if self.hashes.shape != (n, 8, 32) or self.hashes.dtype != np.uint8:
            raise ValueError(f"Expected hashes uint8 [{n}, 8, 32], got {self.hashes.dtype} {self.hashes.shape}")

    def __len__(self) -> int:
        return int(self.quality.shape[0])


def _require_torch(what: str) -> None:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"{what} needs torch, which is not installed: pip install 'vscan[gpu]' (CPU scans do not need it)") from exc


def _torch_importable() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def torch_device(device: DeviceArg = "auto") -> str:
    if device not in _DEVICES:
        raise ConfigError(f"Invalid device ({device!r}). Supported values are {_DEVICES}.")
    if device == "auto":
        return "cuda" if _cuda_available() else "cpu"
    if device == "cuda" and not _cuda_available():
        raise ConfigError("Invalid device ('cuda'): no CUDA GPU is visible to torch.")
    return device


def onnx_providers(device: DeviceArg = "auto") -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    want_cuda = device == "cuda" or (device == "auto" and "CUDAExecutionProvider" in available)
    if want_cuda:
        if "CUDAExecutionProvider" not in available:
            raise ConfigError("Invalid device ('cuda'): onnxruntime has no CUDAExecutionProvider; install vscan[gpu].")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


@functools.lru_cache(maxsize=4)
def _load_session(model_path: str, providers: tuple[str, ...], threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(model_path, sess_options=options, providers=list(providers))
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"onnxruntime cannot load {model_path}: {exc}") from exc
    # onnxruntime falls back from CUDA to CPU with only a log line: say so.
    if providers[0] != session.get_providers()[0]:
        log.warning("onnxruntime asked for %s but runs on %s", providers[0], session.get_providers()[0])
    return session


class PDQHasher:
    """Hash batches of RGB frames with PDQ.

    ``backend="onnx"`` runs ``models/pdq/pdq.onnx`` (verified against its
    manifest's SHA-256); ``backend="torch"`` runs ``vscan.kernels.pdq`` directly.
    Frames in one call may have any sizes: they are grouped by size, since
    the Jarosz operators depend on it.
    """

    def __init__(
        self, *, backend: Backend = "onnx", device: DeviceArg = "auto", threads: int = 0, io_binding: bool | None = None
    ) -> None:
        """io_binding: run the ONNX session through onnxruntime I/O binding
        (:meth:`_run_bound`). None (default): on CUDA only (with torch), where it keeps the
        frames' one upload as uint8; on CPU, ``session.run`` was as fast
        (measured on 128 frames of 256x256)."""
        if backend not in _BACKENDS:
            raise ConfigError(f"Invalid hash backend ({backend!r}). Supported values are {_BACKENDS}.")
        if io_binding and backend != "onnx":
            raise ConfigError(f"Invalid io_binding ({io_binding!r}) for backend {backend!r}: only the onnx backend binds.")
        self.backend = backend
        self.threads = threads
        if backend == "onnx":
            from vscan.models.manifest import MODELS_DIR, load_manifest

            self.manifest = load_manifest(MODELS_DIR / "pdq")
            self.manifest.verify()
            self._providers = tuple(onnx_providers(device))
            self._session = _load_session(str(self.manifest.model_path), self._providers, threads)
            self.device = "cuda" if self._session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
            if io_binding is None:  # on CUDA the binding runs on torch tensors: without torch, session.run
                io_binding = self.device == "cuda" and _torch_importable()
            elif io_binding and self.device == "cuda":
                _require_torch("I/O binding on CUDA")
            self.io_binding = bool(io_binding)
        else:
            _require_torch("the torch hash backend")
            self.manifest = None
            self.device = torch_device(device)
            self._session = None
            self.io_binding = False

    @property
    def provider(self) -> str:
        """What actually runs the hash: e.g. ``onnx:CPUExecutionProvider``."""
        if self._session is not None:
            return f"onnx:{self._session.get_providers()[0]}"
        return f"torch:{self.device}"

    def hash_frames(self, frames: np.ndarray) -> HashBatch:
        """``frames`` uint8 [N, H, W, 3] RGB (one size) -> HashBatch."""
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"Expected uint8 frames [N, H, W, 3], got {frames.dtype} {frames.shape}")
        n, h, w, _ = frames.shape
        if n == 0:
            return HashBatch(np.zeros((0, 8, 32), np.uint8), np.zeros((0,), np.int32))
        if h < PDQ_MIN_SIDE or w < PDQ_MIN_SIDE:
            return HashBatch(np.zeros((n, 8, 32), np.uint8), np.zeros((n,), np.int32))
        if self._session is not None and self.io_binding:
            return self._run_bound(frames)
        if self._session is not None:
            row_op, col_op = operators(h, w)
            hashes, quality = self._session.run(
                None, {"frames": np.ascontiguousarray(frames), "row_op": row_op, "col_op": col_op}
            )
            return HashBatch(hashes, quality.astype(np.int32))
        import torch

        from vscan.kernels.pdq import pdq_hash

        tensor = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device, non_blocking=True)
        hashes, quality = pdq_hash(tensor)
        return HashBatch(hashes.cpu().numpy(), quality.cpu().numpy().astype(np.int32))

    def _run_bound(self, frames: np.ndarray) -> HashBatch:
        """onnxruntime I/O binding on buffers on the session's device.

        CUDA (torch tensors): frames cross to the device once, as uint8 (from
        pinned memory); only 8 x 32 hash bytes and a quality per frame come
        back. torch's stream is synchronised before the session runs on its
        own stream (microsoft/onnxruntime#26609). CPU (numpy arrays, no
        torch): the same bindings on host memory, the frames bound in place.
        """
        n, h, w, _ = frames.shape
        if self.device != "cuda":
            frames = np.ascontiguousarray(frames)
            row_op, col_op = operators(h, w)
            hashes = np.empty((n, 8, 32), np.uint8)
            quality = np.empty((n,), np.int32)
            binding = self._session.io_binding()
            for name, arr in (("frames", frames), ("row_op", row_op), ("col_op", col_op)):
                binding.bind_input(name, "cpu", 0, arr.dtype.type, list(arr.shape), arr.ctypes.data)
            binding.bind_output("hashes", "cpu", 0, np.uint8, list(hashes.shape), hashes.ctypes.data)
            binding.bind_output("quality", "cpu", 0, np.int32, list(quality.shape), quality.ctypes.data)
            self._session.run_with_iobinding(binding)
            return HashBatch(hashes, quality)
        import torch

        device = torch.device("cuda", 0)
        frames_t = torch.from_numpy(np.ascontiguousarray(frames)).pin_memory().to(device, non_blocking=True)
        row_op, col_op = _operators_cuda(h, w)
        inputs = {"frames": frames_t, "row_op": row_op.contiguous(), "col_op": col_op.contiguous()}
        hashes_t = torch.empty((n, 8, 32), dtype=torch.uint8, device=device)
        quality_t = torch.empty((n,), dtype=torch.int32, device=device)
        np_dtype = {torch.uint8: np.uint8, torch.float32: np.float32}  # the model's input types
        binding = self._session.io_binding()
        for name, tensor in inputs.items():
            binding.bind_input(name, "cuda", 0, np_dtype[tensor.dtype], list(tensor.shape), tensor.data_ptr())
        binding.bind_output("hashes", "cuda", 0, np.uint8, list(hashes_t.shape), hashes_t.data_ptr())
        binding.bind_output("quality", "cuda", 0, np.int32, list(quality_t.shape), quality_t.data_ptr())
        torch.cuda.current_stream().synchronize()
        self._session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        return HashBatch(hashes_t.cpu().numpy(), quality_t.cpu().numpy())

    def hash_frame_list(self, frames: list[np.ndarray]) -> HashBatch:
        """Frames of mixed sizes ([H, W, 3] each) -> HashBatch in input order."""
        hashes = np.zeros((len(frames), 8, 32), np.uint8)
        quality = np.zeros((len(frames),), np.int32)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, frame in enumerate(frames):
            by_size.setdefault(frame.shape[:2], []).append(i)
        for idx in by_size.values():
            batch = self.hash_frames(np.stack([frames[i] for i in idx]))
            hashes[idx] = batch.hashes
            quality[idx] = batch.quality
        return HashBatch(hashes, quality)


@functools.lru_cache(maxsize=64)
def _operators_cuda(h: int, w: int):
    from vscan.kernels.pdq import jarosz_operator

    return jarosz_operator(h, device="cuda"), jarosz_operator(w, device="cuda")
