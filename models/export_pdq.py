"""Export ``vscan.kernels.pdq.PDQModule`` to ``models/pdq/pdq.onnx`` and refresh the
SHA-256 in ``models/pdq/manifest.toml``.

    python -m vscan.models.export_pdq [--out models/pdq]

The graph has dynamic batch, height and width; the Jarosz operators for a
frame size are inputs (see ``vscan.kernels.pdq``), so one model serves all sizes.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import warnings
from pathlib import Path

import torch

from vscan.kernels.pdq import PDQModule, jarosz_operator
from vscan.inputs.digests import sha256_file
from vscan.models.manifest import MODELS_DIR

OPSET = 18


def export(out_dir: Path) -> Path:
    import onnx

    module = PDQModule().eval()
    frames = torch.randint(0, 256, (2, 120, 160, 3), dtype=torch.uint8)
    args = (frames, jarosz_operator(120), jarosz_operator(160))
    batch, height, width = torch.export.Dim("batch"), torch.export.Dim("height"), torch.export.Dim("width")
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # The exporter's own deprecation chatter is not ours to act on.
        warnings.simplefilter("ignore")
        tmp_path = Path(tmp) / "pdq.onnx"
        torch.onnx.export(
            module,
            args,
            str(tmp_path),
            input_names=["frames", "row_op", "col_op"],
            output_names=["hashes", "quality"],
            dynamic_shapes={"frames": {0: batch, 1: height, 2: width}, "row_op": {1: height}, "col_op": {1: width}},
            dynamo=True,
            opset_version=OPSET,
        )
        model = onnx.load(str(tmp_path), load_external_data=True)
    model.producer_name = "vscan"
    model.doc_string = "PDQ perceptual hash with 8 dihedral variants (see models/pdq/manifest.toml)"
    onnx.checker.check_model(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "pdq.onnx"
    onnx.save(model, str(target), save_as_external_data=False)
    manifest = out_dir / "manifest.toml"
    if manifest.exists():
        text = re.sub(r'sha256 = "[0-9a-f]*"', f'sha256 = "{sha256_file(target)}"', manifest.read_text(), count=1)
        manifest.write_text(text)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=MODELS_DIR / "pdq")
    target = export(parser.parse_args().out)
    print(f"wrote {target} sha256={sha256_file(target)}")


if __name__ == "__main__":
    main()
