"""A Python environment in which ``import torch`` fails as if torch were not installed.

``pip install 'vscan[cpu]'`` does not install torch, so the CPU path and the
README's walk-through must run without it. The block is a ``sitecustomize``
on PYTHONPATH that refuses ``torch``; Ray's workers and vscan's decode
processes inherit the environment, so it reaches them too. Every process that
loads it writes its pid, command line and each refused import (with the
importing module) under ``VSCAN_TEST_NO_TORCH_LOG`` (a forked child: ``loaded (forked) ...``), so a test can check that
the block was in force in the processes it cares about.
"""

from __future__ import annotations

import os
from pathlib import Path

BLOCKER = '''
import os, sys

_LOG = os.environ.get("VSCAN_TEST_NO_TORCH_LOG")


def _note(line):
    if _LOG:
        with open(os.path.join(_LOG, f"{os.getpid()}.log"), "a") as fh:
            fh.write(line + "\\n")


class _RefuseTorch:
    """Meta-path finder: ``import torch`` (and torch.*) fails as if not installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            frame, importer = sys._getframe(1), "?"
            while frame is not None:  # the first frame outside the import machinery
                module = frame.f_globals.get("__name__", "")
                if not module.startswith(("importlib", "_frozen_importlib", "sitecustomize")):
                    importer = module
                    break
                frame = frame.f_back
            _note(f"refused {name} from {importer}")
            raise ModuleNotFoundError(f"No module named {name!r} (refused: vscan's CPU path runs without torch)", name=name)
        return None


sys.meta_path.insert(0, _RefuseTorch())
# sys.orig_argv: at site time sys.argv of "python -P -m module" is only ["-m"]; a process forked from
# one that loaded the block inherits it without loading this file again, so it says so itself.
_note("loaded " + " ".join(sys.orig_argv[1:6]))
os.register_at_fork(after_in_child=lambda: _note("loaded (forked) " + " ".join(sys.orig_argv[1:6])))
'''


def no_torch_env(folder: Path, base: dict[str, str] | None = None) -> tuple[dict[str, str], Path]:
    """(environment with torch refused, folder of the blocker's per-process logs), made under ``folder``."""
    site = folder / "no-torch-site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    log = folder / "no-torch-log"
    log.mkdir(exist_ok=True)
    env = {k: v for k, v in (base if base is not None else os.environ).items() if not k.startswith("RAY_")}  # a Ray of its own
    env["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [env.get("PYTHONPATH")])])
    env["VSCAN_TEST_NO_TORCH_LOG"] = str(log)
    return env, log


def logs(log: Path) -> dict[int, list[str]]:
    """Per process (pid): the lines it wrote (first ``loaded <argv>``, then ``refused ...``)."""
    return {int(p.stem): p.read_text().splitlines() for p in log.glob("*.log")}
