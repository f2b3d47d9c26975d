"""``python -m journeys``: the command line."""

from __future__ import annotations

import sys

from journeys._cli import main


def run() -> None:
    """Entry point of the ``journeys`` script."""
    sys.exit(main())


if __name__ == "__main__":
    run()
