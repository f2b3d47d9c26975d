"""What the command groups share: a command's description, its configuration, its client.

Each group (:mod:`~journeys.cli.runs`, :mod:`~journeys.cli.people`,
:mod:`~journeys.cli.library`, :mod:`~journeys.cli.servers`) lists its commands as
:class:`Command` values; :func:`journeys.cli.parser` adds them all.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from definitions.errors import ConfigurationError
from journeys.client import JourneysClient
from journeys.config import Settings, load_settings
from journeys.process import EXIT_INTERRUPTED, STOP_SIGNALS, exit_process

__all__ = ["Command", "directory", "settings", "with_client"]


def _no_options(command: argparse.ArgumentParser) -> None:
    """A command without options of its own."""


@dataclass(frozen=True)
class Command:
    """One subcommand of ``journeys``."""

    name: str
    """What is typed: ``journeys <name>``."""
    run: Callable[[argparse.Namespace], int]
    """Runs the command; returns its exit code."""
    help: str
    """One line, shown in ``journeys --help`` and as the command's description."""
    options: Callable[[argparse.ArgumentParser], None] = _no_options
    """Adds the command's arguments and options."""
    journeys_dir: bool = True
    """Takes ``--dir`` (the journeys directory)."""
    configured: bool = True
    """Reads the configuration (``--config``); False accepts it and reads nothing."""


def settings(args: argparse.Namespace) -> Settings:
    """The configuration: ``--config``, else ``$JOURNEYS_CONFIG`` or ``./journeys.toml``."""
    return load_settings(args.config)


def directory(args: argparse.Namespace, settings: Settings, *, required: bool = False) -> Path:
    """The journeys directory: ``--dir``, else ``directory`` in the configuration.

    Raises:
        ConfigurationError: ``required`` and there is no such directory.

    """
    found = Path(getattr(args, "dir", None) or settings.directory)
    if required and not found.is_dir():
        where = "--dir" if getattr(args, "dir", None) else "`directory` in journeys.toml"
        raise ConfigurationError(
            f"no journeys directory at {found.absolute()} (from {where}); "
            "set `directory` in journeys.toml or JOURNEYS_DIRECTORY, or pass --dir"
        )
    return found


def with_client(
    args: argparse.Namespace,
    action: Callable[[JourneysClient], Coroutine[Any, Any, int]],
    *,
    temporal: bool = True,
    journeys_dir: bool = False,
) -> int:
    """Run a one-shot command's ``action`` with a connected client, closed afterwards.

    Args:
        args: the command line.
        action: what the command does with the client; returns the exit code.
        temporal: False to open only the store.
        journeys_dir: the journeys directory must exist.

    """
    configured = settings(args)
    journeys = directory(args, configured, required=journeys_dir)

    async def go() -> int:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, _abandon)
        async with await JourneysClient.connect(
            configured, directory=journeys, temporal=temporal
        ) as client:
            return await action(client)

    return asyncio.run(go())


def _abandon() -> NoReturn:
    """A one-shot command interrupted: exit 130 at once.

    Cancelling it instead would make SQLAlchemy log, with a traceback, a connection it
    could not close when the signal lands mid-query (a status waiting on Temporal); and
    there is nothing to finish: each store write is a transaction of its own, and a
    trigger retried with its idempotency key starts nothing twice.
    """
    if sys.stdout.isatty():
        print()  # after a progress bar drawn with \r
    exit_process(EXIT_INTERRUPTED)
