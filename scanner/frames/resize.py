"""Resize decoded frames to the model's square input (when the decoder could not)."""

from __future__ import annotations

import numpy as np

__all__ = ["to_square"]


def to_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """uint8 [N, H, W, 3] -> [N, size, size, 3], antialiased bilinear."""
    if rgb.shape[1:3] == (size, size):
        return rgb
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(rgb).permute(0, 3, 1, 2).to(torch.float32)
    y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return y.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
