"""The ``journeys`` command: its parser and :func:`main`.

The commands live in their groups — :mod:`~journeys.cli.library` (validate, graph,
preview), :mod:`~journeys.cli.runs` (trigger, status, cancel), :mod:`~journeys.cli.people`
(track, messages, message, preferences, suppress, unsubscribe) and
:mod:`~journeys.cli.servers` (worker, dev, inbox, demo, serve, migrate) — each a list of
:class:`~journeys.cli.base.Command`; :mod:`~journeys.cli.args` reads their values.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from definitions.errors import EngineUnavailableError, JourneysError
from journeys.cli import library, people, runs, servers
from journeys.cli.base import Command
from journeys.process import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_UNAVAILABLE, EXIT_USAGE

__all__ = ["main", "parser"]

ORDER = (
    "validate",
    "graph",
    "trigger",
    "status",
    "cancel",
    "track",
    "messages",
    "message",
    "preview",
    "preferences",
    "suppress",
    "unsubscribe",
    "worker",
    "dev",
    "inbox",
    "demo",
    "serve",
    "migrate",
)
"""The order ``journeys --help`` lists the commands in."""

COMMANDS: dict[str, Command] = {
    command.name: command
    for group in (library, runs, people, servers)
    for command in group.COMMANDS
}
"""Every command, by name."""


def parser() -> argparse.ArgumentParser:
    """The command line's parser."""
    top = argparse.ArgumentParser(
        prog="journeys",
        description="Customer journeys as YAML, run as durable Temporal workflows.",
        epilog=(
            "Exit codes: 0 done (or a long-running command stopped by SIGINT/SIGTERM), "
            "1 problems found or the request refused, 2 a wrong command line, "
            "3 Temporal or the store cannot be reached, 130 interrupted."
        ),
    )
    config_help = "configuration file (default: $JOURNEYS_CONFIG or ./journeys.toml)"
    top.add_argument("--config", help=config_help)
    # The global options again, after the command: `journeys validate --config x.toml`.
    # SUPPRESS keeps a value given before the command when none is given after it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help=config_help)
    unread = argparse.ArgumentParser(add_help=False)
    unread.add_argument(
        "--config", default=argparse.SUPPRESS, help="accepted and not read: needs no configuration"
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in ORDER:
        command = COMMANDS[name]
        parents = [common if command.configured else unread]
        added = sub.add_parser(name, help=command.help, description=command.help, parents=parents)
        if command.journeys_dir:
            added.add_argument(
                "--dir", help="journeys directory (default: `directory` in the configuration)"
            )
        command.options(added)
        added.set_defaults(func=command.run, command_parser=added)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see :mod:`journeys.process`)."""
    # SIGTERM ends a one-shot command like Ctrl-C does, so what it started is stopped too;
    # long-running commands stop cleanly on either (run_until_stopped).
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        args = parser().parse_args(argv)
        code: int = args.func(args)
    except SystemExit as exc:  # argparse: --help (0) or a wrong command line (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except EngineUnavailableError as exc:
        print(f"journeys: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except JourneysError as exc:
        print(f"journeys: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return code


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt
