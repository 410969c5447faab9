"""Model manifests: a TOML file beside each ONNX model says what it is.

A manifest names the model file and its SHA-256, its kind (``hash`` |
``classifier`` | ``detector``), its inputs and outputs, and for hash models
the distance metric and thresholds. The runtime refuses a model whose bytes
do not match the manifest: hashes from a silently swapped model would not
be comparable with a bank.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from scanner._errors import ModelError

__all__ = ["ModelManifest", "load_manifest", "sha256_file", "MODELS_DIR"]

MODELS_DIR = Path(__file__).resolve().parent
_KINDS = ("hash", "classifier", "detector")


def sha256_file(path: Path, *, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelManifest:
    name: str
    kind: Literal["hash", "classifier", "detector"]
    version: str
    model_path: Path
    sha256: str
    manifest_path: Path
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    match: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ModelError(f"Invalid model kind ({self.kind!r}) in {self.manifest_path}. Supported values are {_KINDS}.")

    def verify(self) -> None:
        """Raise ModelError unless the model file exists and its SHA-256 matches."""
        if not self.model_path.is_file():
            raise ModelError(f"Model file {self.model_path} named by {self.manifest_path} is missing")
        actual = sha256_file(self.model_path)
        if actual != self.sha256:
            raise ModelError(
                f"Model file {self.model_path} has SHA-256 {actual}, manifest {self.manifest_path} says {self.sha256}"
            )


def load_manifest(path: Path | str) -> ModelManifest:
    """Load a manifest TOML (or the ``manifest.toml`` inside a folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.toml"
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ModelError(f"Cannot read model manifest {path}: {exc}") from exc
    try:
        model = data["model"]
        return ModelManifest(
            name=model["name"],
            kind=model["kind"],
            version=str(model["version"]),
            model_path=(path.parent / model["file"]).resolve(),
            sha256=model["sha256"],
            manifest_path=path,
            inputs=data.get("inputs", {}),
            outputs=data.get("outputs", {}),
            match=data.get("match", {}),
            description=model.get("description", ""),
        )
    except KeyError as exc:
        raise ModelError(f"Model manifest {path} lacks required key {exc}") from exc
