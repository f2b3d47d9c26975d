"""``journeys trigger``, ``status`` and ``cancel``: runs and triggers."""

from __future__ import annotations

import argparse
import asyncio
import sys

from journeys.cli.args import json_object
from journeys.cli.args import recipients as parse_recipients
from journeys.cli.base import Command, with_client
from journeys.client import JourneysClient
from journeys.models import TriggerStatus
from journeys.report import plural

__all__ = ["COMMANDS"]


async def _follow(client: JourneysClient, trigger_id: str) -> TriggerStatus:
    """Redraw a trigger's progress bar until every recipient has finished."""
    from journeys.report import progress_bar

    tty = sys.stdout.isatty()
    shown = ""
    while True:
        status = await client.status(trigger_id)
        assert isinstance(status, TriggerStatus)  # a trigger id reads as a trigger
        line = progress_bar(status)
        if line != shown:
            print(("\r" + line) if tty else line, end="" if tty else "\n", flush=True)
            shown = line
        if status.done:
            if tty:
                print()
            return status
        await asyncio.sleep(1.0)


def cmd_trigger(args: argparse.Namespace) -> int:
    """``journeys trigger``."""
    data = json_object(args, args.data, "--data")
    recipients = parse_recipients(args)

    async def action(client: JourneysClient) -> int:
        handle = await client.trigger(
            args.name,
            recipients,
            data=data,
            idempotency_key=args.idempotency_key,
            cohorts=args.cohorts,
        )
        print(f"trigger {handle.trigger_id}")
        if handle.cohorts:
            print(
                f"  {plural(handle.recipients, 'recipient')}, started in cohorts by the workflow "
                f"{handle.journey}/{handle.trigger_id}"
            )
        for run in handle.runs:
            note = "" if run.started else "  (already in this journey: kept that run)"
            print(f"  {run.recipient_id}  {run.run_id}  {run.workflow_id}{note}")
        if args.wait:
            await _follow(client, handle.trigger_id)
        return 0

    return with_client(args, action, journeys_dir=True)


def cmd_status(args: argparse.Namespace) -> int:
    """``journeys status``."""
    from journeys.report import run_text, status_json, trigger_text

    async def action(client: JourneysClient) -> int:
        status = await client.status(args.id, recipient=args.recipient)
        if args.json:
            print(status_json(status))
        elif isinstance(status, TriggerStatus):
            print(trigger_text(status))
        else:
            print(run_text(status))
        return 0

    return with_client(args, action)


def cmd_cancel(args: argparse.Namespace) -> int:
    """``journeys cancel``."""
    from journeys.report import run_text, trigger_text

    async def action(client: JourneysClient) -> int:
        status = await client.cancel(args.id)
        print(trigger_text(status) if isinstance(status, TriggerStatus) else run_text(status))
        return 0

    return with_client(args, action)


def _trigger_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("name", help="the journey")
    c.add_argument(
        "--to",
        nargs="+",
        action="extend",
        metavar="ID",
        help='recipients: ids, or JSON objects with an id and profile fields ({"id": "u42", …})',
    )
    c.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="NAME=TEXT",
        help="a profile field for every recipient, e.g. --field email=ana@example.com; "
        "NAME:=JSON for another JSON value (--field age:=42); repeat for more",
    )
    c.add_argument(
        "--to-file",
        metavar="FILE",
        help="recipients, one a line: an id, or a JSON object with an id and profile fields",
    )
    cohorts = c.add_mutually_exclusive_group()
    cohorts.add_argument(
        "--cohorts",
        dest="cohorts",
        action="store_true",
        default=None,
        help="run as cohorts whatever the number (default: above [cohorts] threshold)",
    )
    cohorts.add_argument(
        "--no-cohorts", dest="cohorts", action="store_false", help="one run per recipient"
    )
    c.add_argument(
        "--wait", action="store_true", help="show a progress bar until every recipient is done"
    )
    c.add_argument("--data", metavar="JSON", help="JSON object the templates see as trigger.*")
    c.add_argument("--idempotency-key", metavar="KEY", help="makes retrying this command safe")


def _status_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("id")
    c.add_argument("--recipient", metavar="ID", help="with a trigger id: that recipient's run")
    c.add_argument("--json", action="store_true", help="print JSON")


def _cancel_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("id", help="a run id, workflow id or trigger id (trg_…)")


COMMANDS = [
    Command("trigger", cmd_trigger, "start a journey for recipients", _trigger_options),
    Command(
        "status",
        cmd_status,
        "show a run (run id or workflow id) or a trigger (trg_…)",
        _status_options,
        journeys_dir=False,
    ),
    Command(
        "cancel",
        cmd_cancel,
        "cancel a run or every run of a trigger",
        _cancel_options,
        journeys_dir=False,
    ),
]
"""The commands of runs and triggers."""
