"""``python -m workers``: run a journeys worker with the configuration of this directory."""

from __future__ import annotations

import sys

from journeys.__main__ import run


def main() -> None:
    """``journeys worker``: the same options, signals, exit codes and clean exit."""
    run(["worker", *sys.argv[1:]])


if __name__ == "__main__":
    main()
