"""``python -m workers``: run a journeys worker with the configuration of this directory."""

from __future__ import annotations

import asyncio

from journeys.config import load_settings
from workers.worker import configure_logging, run_worker


def main() -> None:
    """Run the worker until interrupted."""
    configure_logging()
    asyncio.run(run_worker(load_settings()))


if __name__ == "__main__":
    main()
