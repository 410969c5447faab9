"""Batched PDQ on torch: CUDA when present, CPU otherwise.

The numpy parts (constants, the Jarosz operators) live in
``vscan.hashing.pdq_ops``, which the CPU path uses without torch.

PDQ (Meta's perceptual image hash) per frame:

1. luminance ``Y = 0.299 R + 0.587 G + 0.114 B`` as float;
2. Jarosz filter: two passes of a box filter along each axis, window
   ``ceil(dim / 128)``, normalised by the number of pixels inside the image;
3. decimation to 64x64 at the cell centres ``int((i + 0.5) * dim / 64)``;
4. quality from the 64x64 gradients;
5. 16x16 DCT (DC row dropped), bit = coefficient > median.

Steps 2 and 3 are linear and separable, so for a frame of H x W they collapse
into two small matrices: ``A = R_h @ Y @ R_w.T`` with ``R_h`` of shape
[64, H] and ``R_w`` of [64, W] (``jarosz_operator``). That turns the whole
hash into a handful of batched matmuls, which is what GPUs (and ONNX
runtimes) do best, and lets one graph serve every resolution: the operators
are inputs, cached per frame size.

The 8 dihedral variants (rotations and flips of the frame) are each the
PDQ of the frame turned or mirrored: the 64x64 pictures of the frame as is,
mirrored left-right, upside down and both (the luma's columns or the column
pass's rows reversed before the same products), and their transposes (PDQ of
a transposed picture is its transposed 64x64 picture, exactly). Not the
hash's own variants (the reference's, from the DCT: mirroring an axis
multiplies the coefficient of frequency ``u`` along it by ``(-1)**u``): PDQ's
Jarosz filter and cell centres are not symmetric, so those lie 20-40 bits
(60-80 on fine detail) from the mirrored picture's own hash, and a mirrored
copy met its source at the match threshold's edge. Variant 0 is the
reference's hash, unchanged; the mirrored pictures cost one more product
over the frame's pixels. Each variant is thresholded at its own median.

Hash bytes: [..., 32] uint8 in the order of the upstream hex string, i.e.
``bytes.fromhex(hex64)``; bit ``k = 16 i + j`` (DCT row i, column j) lives
in 16-bit word ``k >> 4`` at bit ``k & 15``, and the string prints word 15
first.
"""

from __future__ import annotations

import functools

import torch

from vscan.hashing.pdq_ops import DIHEDRAL_NAMES, LUMA, NUM_DIHEDRAL, PDQ_MIN_SIDE, dct_matrix_np, jarosz_operator_np, pack_permutation

__all__ = [
    "DIHEDRAL_NAMES",
    "NUM_DIHEDRAL",
    "PDQ_MIN_SIDE",
    "dct_matrix",
    "jarosz_operator",
    "luminance",
    "pack_bits",
    "unpack_bits",
    "pdq_downsample",
    "pdq_quality",
    "pdq_dct",
    "dihedral_coefficients",
    "turned_coefficients",
    "threshold_bits",
    "pdq_hash",
    "PDQModule",
]

def dct_matrix(*, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The [16, 64] DCT-II rows 1..16 (DC dropped) that PDQ uses."""
    return torch.as_tensor(dct_matrix_np(), dtype=dtype, device=device)


def jarosz_operator(
    n: int,
    *,
    out: int = 64,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """[out, n] matrix = decimate(box(box(x))) along one axis of length n."""
    return torch.as_tensor(jarosz_operator_np(n, out=out), dtype=dtype, device=device)


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """[N, H, W, 3] uint8 (or float) RGB -> [N, H, W] float32 luma, 0..255."""
    if rgb.ndim != 4 or rgb.shape[-1] != 3:
        raise ValueError(f"Expected frames of shape [N, H, W, 3], got {tuple(rgb.shape)}")
    x = rgb.to(torch.float32)
    return x[..., 0] * LUMA[0] + x[..., 1] * LUMA[1] + x[..., 2] * LUMA[2]


def pdq_downsample(luma: torch.Tensor, row_op: torch.Tensor, col_op: torch.Tensor) -> torch.Tensor:
    """[N, H, W] luma -> [N, 64, 64] Jarosz-filtered and decimated."""
    # Contract the longer axis first: fewer multiply-adds in the second matmul.
    return row_op @ (luma @ col_op.transpose(0, 1))


def pdq_quality(a64: torch.Tensor) -> torch.Tensor:
    """Quality 0..100 from [N, 64, 64] (the reference's integer arithmetic)."""
    dv = torch.floor((a64[:, 1:, :] - a64[:, :-1, :]).abs() * 100.0 / 255.0)
    dh = torch.floor((a64[:, :, 1:] - a64[:, :, :-1]).abs() * 100.0 / 255.0)
    total = dv.sum(dim=(1, 2)) + dh.sum(dim=(1, 2))
    return torch.clamp(torch.floor(total / 90.0), max=100.0).to(torch.int32)


def pdq_dct(a64: torch.Tensor, dct: torch.Tensor) -> torch.Tensor:
    """[N, 64, 64] -> [N, 16, 16] coefficients ``D A D^T``."""
    return dct @ a64 @ dct.transpose(0, 1)


def _axis_signs(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    # Frequency u = i + 1; mirroring the axis multiplies by (-1)**u.
    u = torch.arange(1, 17, device=device)
    return torch.where(u % 2 == 1, -1.0, 1.0).to(dtype)


def dihedral_coefficients(coeffs: torch.Tensor) -> torch.Tensor:
    """[N, 16, 16] -> [N, 8, 16, 16] in ``DIHEDRAL_NAMES`` order: the hash's own variants (the reference's, from the
    DCT's signs), 20-40 bits from the turned frame's own PDQ that ``turned_coefficients`` gives."""
    s = _axis_signs(coeffs.device, coeffs.dtype)
    sh = s[None, None, :]  # mirrors columns (left-right)
    sv = s[None, :, None]  # mirrors rows (top-bottom)
    return turned_coefficients(coeffs, coeffs * sh, coeffs * sv, coeffs * sh * sv)


def turned_coefficients(coeffs: torch.Tensor, flip_h: torch.Tensor, flip_v: torch.Tensor, rot180: torch.Tensor) -> torch.Tensor:
    """[N, 16, 16] DCTs of the frame as is, mirrored left-right, upside down and both -> [N, 8, 16, 16] in
    ``DIHEDRAL_NAMES`` order, each the PDQ coefficients of the frame under that edit (a quarter turn or a transpose
    is the transpose of one of them), where ``dihedral_coefficients`` takes the hash's own signs."""
    t = lambda x: x.transpose(1, 2)  # noqa: E731
    # original, rot90 (counter-clockwise), rot180, rot270, flip_h, flip_v, transpose, transverse
    return torch.stack([coeffs, t(flip_h), rot180, t(flip_v), flip_h, flip_v, t(coeffs), t(rot180)], dim=1)


def threshold_bits(coeffs: torch.Tensor) -> torch.Tensor:
    """[..., 16, 16] -> [..., 256] bool, bit = coefficient > (lower) median."""
    flat = coeffs.reshape(*coeffs.shape[:-2], 256)
    # The reference's Torben median returns the 128th smallest of 256.
    median = torch.topk(flat, 128, dim=-1, largest=False, sorted=True).values[..., 127:128]
    return flat > median


def pack_bits(bits: torch.Tensor) -> torch.Tensor:
    """[..., 256] bool -> [..., 32] uint8 in hex-string byte order."""
    perm, weights = pack_permutation()
    idx = torch.as_tensor(perm, device=bits.device)
    w = torch.as_tensor(weights, device=bits.device)
    grouped = bits.to(torch.float32).index_select(-1, idx).reshape(*bits.shape[:-1], 32, 8)
    return (grouped * w).sum(dim=-1).to(torch.uint8)


def unpack_bits(packed: torch.Tensor) -> torch.Tensor:
    """Inverse of ``pack_bits``: [..., 32] uint8 -> [..., 256] bool (bit k)."""
    perm, _ = pack_permutation()
    shifts = torch.arange(8, device=packed.device, dtype=torch.uint8)
    bits_by_byte = (packed.unsqueeze(-1) >> shifts) & 1  # [..., 32, 8]
    out = torch.zeros(*packed.shape[:-1], 256, dtype=torch.bool, device=packed.device)
    out[..., torch.as_tensor(perm, device=packed.device)] = bits_by_byte.reshape(*packed.shape[:-1], 256).bool()
    return out


class PDQModule(torch.nn.Module):
    """frames uint8 [N, H, W, 3], row_op [64, H], col_op [64, W] ->
    hashes uint8 [N, 8, 32] (dihedral variants, ``DIHEDRAL_NAMES`` order)
    and quality int32 [N]. This is the graph exported to ONNX."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("dct", dct_matrix(), persistent=False)

    def forward(
        self, frames: torch.Tensor, row_op: torch.Tensor, col_op: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        luma = luminance(frames)
        half = luma @ col_op.transpose(0, 1)  # [N, H, 64]: pdq_downsample's column pass
        a64 = row_op @ half
        quality = pdq_quality(a64)
        # The frame mirrored left-right: its luma's columns reversed, the same products (its own hash, bit for bit);
        # upside down: the column pass's rows reversed (each of its sums as the turned frame's).
        half_h = luma.flip(-1) @ col_op.transpose(0, 1)
        turned = [a64, row_op @ half_h, row_op @ half.flip(-2), row_op @ half_h.flip(-2)]
        coeffs = turned_coefficients(*(pdq_dct(a, self.dct) for a in turned))
        return pack_bits(threshold_bits(coeffs)), quality


@functools.lru_cache(maxsize=8)
def _module_on(device: str) -> PDQModule:
    return PDQModule().to(device)


def pdq_hash(frames: torch.Tensor, *, dihedral: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Hash a batch of same-size RGB frames on their own device.

    Returns ``(hashes, quality)``: hashes uint8 [N, 8, 32] (or [N, 32] with
    ``dihedral=False``), quality int32 [N]. Frames under 5 px on a side give
    all-zero hashes with quality 0, as the reference does.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"Expected frames of shape [N, H, W, 3], got {tuple(frames.shape)}")
    n, h, w, _ = frames.shape
    device = frames.device
    if h < PDQ_MIN_SIDE or w < PDQ_MIN_SIDE:
        hashes = torch.zeros(n, NUM_DIHEDRAL, 32, dtype=torch.uint8, device=device)
        quality = torch.zeros(n, dtype=torch.int32, device=device)
    else:
        module = _module_on(str(device))
        with torch.inference_mode():
            hashes, quality = module(frames, jarosz_operator(h, device=device), jarosz_operator(w, device=device))
    return (hashes if dihedral else hashes[:, 0]), quality

