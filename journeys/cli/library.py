"""``journeys validate``, ``graph`` and ``preview``: the journeys directory, read."""

from __future__ import annotations

import argparse
import json
import sys

from definitions.channels import CHANNELS
from definitions.compiler import Library
from definitions.graph import to_mermaid
from journeys.cli.args import json_object
from journeys.cli.base import Command, directory, settings, with_client
from journeys.client import JourneysClient
from journeys.process import EXIT_FAILED, EXIT_OK
from journeys.report import plural

__all__ = ["COMMANDS"]


def cmd_validate(args: argparse.Namespace) -> int:
    """``journeys validate``."""
    journeys = directory(args, settings(args), required=True)
    library = Library(journeys)
    problems = library.check()
    for problem in problems:
        print(problem.format(), file=sys.stderr)
    if problems:
        print(f"{plural(len(problems), 'problem')} found", file=sys.stderr)
        return EXIT_FAILED
    names = library.names()
    listed = f" ({', '.join(names)})" if names else ""
    print(
        f"ok: {plural(len(names), 'journey')}{listed}, "
        f"{plural(len(library.template_names()), 'template')} in {journeys}"
    )
    return EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    """``journeys graph``."""
    plan = Library(directory(args, settings(args), required=True)).compile(args.name)
    sys.stdout.write(to_mermaid(plan))
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    """``journeys preview``."""
    profile = json_object(args, args.profile, "--profile") if args.profile else None
    data = json_object(args, args.data, "--data")

    async def action(client: JourneysClient) -> int:
        rendered = await client.preview(
            args.template, args.channel, recipient=args.recipient, profile=profile, data=data
        )
        for key, value in rendered.items():
            text = value if isinstance(value, str) else json.dumps(value, indent=2)
            print(f"--- {key}\n{text.rstrip()}")
        return 0

    return with_client(args, action, temporal=False)


def _graph_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("name")


def _preview_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("template")
    c.add_argument("--channel", required=True, choices=list(CHANNELS), help="the variant to render")
    who = c.add_mutually_exclusive_group()
    who.add_argument("--recipient", metavar="ID", help="a stored profile")
    who.add_argument("--profile", metavar="JSON", help="a sample profile")
    c.add_argument("--data", metavar="JSON", help="trigger data (trigger.*)")


COMMANDS = [
    Command("validate", cmd_validate, "check every journey, template and segment file"),
    Command("graph", cmd_graph, "print a journey as a Mermaid flowchart", _graph_options),
    Command(
        "preview",
        cmd_preview,
        "render a template for a recipient or a sample profile",
        _preview_options,
    ),
]
"""The commands that read the journeys directory."""
