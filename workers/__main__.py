"""``python -m workers``: run a journeys worker with the configuration of this directory."""

from __future__ import annotations

import asyncio
import logging

from journeys.config import load_settings
from workers.worker import run_worker


def main() -> None:
    """Run the worker until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run_worker(load_settings()))


if __name__ == "__main__":
    main()
