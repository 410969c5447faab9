"""``python -m vscan.cli``: the same as the ``vscan`` command."""

from vscan.cli.main import main

main()
