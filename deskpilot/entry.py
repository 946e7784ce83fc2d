"""The `deskpilot` command's entry point: `up` spawns its worker before loading the rest."""

from __future__ import annotations

import sys


def main() -> None:
    from deskpilot.worker_spawn import prestart_for

    prestart_for(sys.argv[1:])
    from deskpilot.cli import main as cli_main

    cli_main()
