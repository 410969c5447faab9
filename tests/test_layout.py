"""The package's shape: one top-level name, small modules, no import cycles,
a public API that says what it exports, tools the library never imports."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import vscan

ROOT = Path(__file__).resolve().parents[1]
#: Repository folders and the import names they install as (pyproject.toml).
FOLDERS = {"scanner": "vscan", "kernels": "vscan.kernels", "models": "vscan.models", "bench": "vscan.bench"}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([package, *parts])
            # kernels/, models/ and bench/ are their own packages, not vscan/<folder>.
            if folder == "scanner" and parts and parts[0] in ("kernels", "models", "bench"):
                continue
            out[name] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """vscan modules imported anywhere in the file (function-level imports too)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for target in targets:
            # The longest known module the import names (``from vscan.x import y``: vscan.x.y if a module).
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_every_repository_folder_maps_under_vscan():
    assert "vscan" in MODULES and "vscan.kernels.pdq" in MODULES and "vscan.bench.synth" in MODULES
    for folder in ("scanner", "kernels", "models", "bench"):
        assert (ROOT / folder / "__init__.py").exists(), folder


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_small(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(ROOT)}: {lines} lines (split it: at most {MAX_LINES})"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    # Package __init__ files only re-export: an edge into a package is an
    # edge into the modules it re-exports, which the graph has already.
    graph = {k: {w for w in v if not (MODULES[w].name == "__init__.py" and k.startswith(w + "."))} for k, v in GRAPH.items()}
    assert _cycles(graph) == []


def test_library_never_imports_the_tools():
    """Benchmarks and media generators (vscan.bench) are run by the CLI only."""
    offenders = {
        name: sorted(t for t in targets if t == "vscan.bench" or t.startswith("vscan.bench."))
        for name, targets in GRAPH.items()
        if not (name.startswith("vscan.bench") or name.startswith("vscan.cli"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_kernels_are_only_reached_from_the_device_paths():
    """torch lives in vscan.kernels; the CPU path (decode, hash, match) must not need it at import."""
    code = "import sys, vscan, vscan.runtime.driver, vscan.runtime.decode_task; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


PUBLIC = {
    "__version__", "scan", "scan_iter", "ScanRun", "ScanSummary", "hash_file",
    "ScanConfig", "Sampling", "Matching", "Models", "Inputs", "Archives", "Runtime",
    "Bank", "BankInfo",
    "VscanError", "InputError", "FileAccessError", "UnsupportedMediaError", "DecodeError", "DecodeTimeoutError",
    "ArchiveError", "ArchiveMemberError", "ModelError", "BankError", "ConfigError",
}  # fmt: skip


def test_public_api():
    assert set(vscan.__all__) == PUBLIC
    assert len(vscan.__all__) == len(set(vscan.__all__))
    for name in vscan.__all__:
        assert getattr(vscan, name) is not None, name
    public_callables = [n for n in vscan.__all__ if not n.startswith("_")]
    for name in public_callables:
        obj = getattr(vscan, name)
        assert obj.__doc__, f"vscan.{name} has no docstring"


def test_error_tree():
    for name in PUBLIC:
        obj = getattr(vscan, name)
        if isinstance(obj, type) and name.endswith("Error"):
            assert issubclass(obj, vscan.VscanError)


def test_wheel_installs_one_top_level_package(tmp_path):
    """``pip install .`` puts exactly one package of ours in site-packages: vscan."""
    src = tmp_path / "src"  # a clean copy: no build/ left from an earlier run can leak into the wheel
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(src)],
                   check=True, capture_output=True)  # fmt: skip
    (wheel,) = tmp_path.glob("vscan-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"vscan"}
    for needed in ("vscan/models/pdq/pdq.onnx", "vscan/models/pdq/manifest.toml", "vscan/verdict/schema/result.v1.json",
                   "vscan/kernels/pdq.py", "vscan/bench/synth.py", "vscan/cli/__main__.py"):  # fmt: skip
        assert needed in names, needed
