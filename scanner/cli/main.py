"""The ``vscan`` command line (console script ``vscan = "vscan.cli.main:main"``).

Commands live in modules by group, each registering on :data:`vscan.cli.app.app`:

    scan_cmd     vscan scan, vscan config show
    bank_cmd     vscan hash, vscan bank build|info, vscan models list|check
    feedback_cmd vscan bank import|lookup|disable|enable|history|compact, vscan feedback
    report_cmd   vscan report, vscan demo, vscan bench
    export_cmd   vscan export
"""

# First: Ctrl-C while the commands load exits 130 (vscan.cli.starting).
from vscan.cli import starting

starting.install()

from vscan.cli import scan_cmd, bank_cmd, feedback_cmd, report_cmd, export_cmd  # noqa: E402,F401  (they register the commands, in --help order)
from vscan.cli import rematch_cmd, serve_cmd  # noqa: E402,F401  (vscan rematch, vscan serve)
from vscan.cli.app import app  # noqa: E402

__all__ = ["app", "main"]

if not starting.is_the_command():  # imported by a program or a test: its Ctrl-C is its own again
    starting.started()


def main() -> None:
    starting.install()  # (again: main() may be called by a program that imported this module)
    app()


if __name__ == "__main__":
    main()
