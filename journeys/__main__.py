"""``python -m journeys``: the command line."""

from __future__ import annotations

import traceback
from collections.abc import Sequence

from journeys.cli import main
from journeys.process import EXIT_FAILED, exit_process


def run(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``journeys`` script: runs the command, then ends the process.

    The process ends with :func:`~journeys.process.exit_process`, never by interpreter
    finalization, which can abort while the Temporal SDK's threads finish a call.

    Args:
        argv: the arguments (default: the process's).

    """
    try:
        code = main(argv)
    except BaseException:  # an engine bug: show it, and still leave without an abort
        traceback.print_exc()
        code = EXIT_FAILED
    exit_process(code)


if __name__ == "__main__":
    run()
