"""The ``vscan`` command line (console script ``vscan = "vscan.cli.main:main"``).

Commands live in modules by group, each registering on :data:`vscan.cli.app.app`:

    scan_cmd     vscan scan, vscan config show
    bank_cmd     vscan hash, vscan bank build|info, vscan models list|check
    feedback_cmd vscan bank import|lookup|disable|enable|history|compact, vscan feedback
    report_cmd   vscan report, vscan demo, vscan bench
    export_cmd   vscan export
"""

import signal

# Ctrl-C while the command is still loading (a second of imports) ends it with
# 130 like Ctrl-C later, not with a traceback or a death by SIGINT. An ignored
# SIGINT (a background job) stays ignored.
def _exit_130(signum, frame) -> None:
    raise SystemExit(130)


_LOADING = signal.getsignal(signal.SIGINT) is signal.default_int_handler
if _LOADING:
    signal.signal(signal.SIGINT, _exit_130)

from vscan.cli import scan_cmd, bank_cmd, feedback_cmd, report_cmd, export_cmd  # noqa: E402,F401  (they register the commands, in --help order)
from vscan.cli import rematch_cmd, serve_cmd  # noqa: F401  (vscan rematch, vscan serve)
from vscan.cli.app import app  # noqa: E402

if _LOADING:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # loaded: Ctrl-C is KeyboardInterrupt again

__all__ = ["app", "main"]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
