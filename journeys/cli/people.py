"""``journeys track``, ``messages``, ``message``, ``preferences``, ``suppress``, ``unsubscribe``.

What concerns a person: their events, their messages and their consent.
"""

from __future__ import annotations

import argparse

from definitions.channels import CHANNELS
from journeys.cli.args import json_object, positive, usage
from journeys.cli.base import Command, with_client
from journeys.client import JourneysClient
from journeys.report import plural
from journeys.store import MessageRecord

__all__ = ["COMMANDS"]


def cmd_track(args: argparse.Namespace) -> int:
    """``journeys track``."""
    data = json_object(args, args.data, "--data")

    async def action(client: JourneysClient) -> int:
        result = await client.track(args.recipient, args.event, data)
        started = f"; started {plural(len(result.started), 'journey')}" if result.started else ""
        print(
            f"recorded {args.event} for {args.recipient}; reached "
            f"{plural(result.reached, 'running journey')}{started}"
        )
        return 0

    return with_client(args, action)


def _message_line(message: MessageRecord) -> str:
    when = message.updated_at.strftime("%Y-%m-%d %H:%M:%S") if message.updated_at else "-"
    why = f"  ({message.reason})" if message.reason else ""
    return (
        f"{when}  {message.state:<8} {message.channel:<8} {message.step:<16} "
        f"{message.address or '-'}{why}\n    {message.id}"
    )


def cmd_messages(args: argparse.Namespace) -> int:
    """``journeys messages``."""
    from journeys.report import as_json

    if args.recipient is None and args.run is None:
        usage(args, "give --recipient ID and/or --run RUN")

    async def action(client: JourneysClient) -> int:
        found = await client.messages(recipient=args.recipient, run=args.run, limit=args.limit)
        if args.json:
            print(as_json(found))
        elif not found:
            print("no messages")
        for message in [] if args.json else found:
            print(_message_line(message))
        return 0

    return with_client(args, action, temporal=False)


def cmd_message(args: argparse.Namespace) -> int:
    """``journeys message``."""
    from journeys.report import as_json

    async def action(client: JourneysClient) -> int:
        message = await client.message_status(args.id)
        print(as_json(message) if args.json else _message_line(message))
        return 0

    return with_client(args, action, temporal=False)


def cmd_preferences(args: argparse.Namespace) -> int:
    """``journeys preferences``."""
    channels = {**dict.fromkeys(args.opt_out, True), **dict.fromkeys(args.opt_in, False)}
    topics: dict[str, bool] = {}
    for item in args.topic:
        name, _, value = item.partition("=")
        if value not in ("on", "off") or not name:
            usage(args, f"--topic expects NAME=on|off, found {item!r}")
        topics[name] = value == "on"
    unsubscribed = True if args.unsubscribe else False if args.resubscribe else None

    async def action(client: JourneysClient) -> int:
        if channels or topics or unsubscribed is not None:
            prefs = await client.update_preferences(
                args.recipient, unsubscribed=unsubscribed, channels=channels, topics=topics
            )
        else:
            prefs = await client.preferences(args.recipient)
        opted_out = ", ".join(c for c, out in sorted(prefs.channels.items()) if out) or "none"
        listed = ", ".join(f"{t}={'on' if on else 'off'}" for t, on in sorted(prefs.topics.items()))
        print(
            f"recipient     {prefs.recipient_id}\n"
            f"unsubscribed  {'yes' if prefs.unsubscribed else 'no'}\n"
            f"opted out of  {opted_out}\n"
            f"topics        {listed or '(all subscribed)'}"
        )
        return 0

    return with_client(args, action, temporal=False)


def cmd_suppress(args: argparse.Namespace) -> int:
    """``journeys suppress``."""
    kind = "address" if args.address else "person"

    async def action(client: JourneysClient) -> int:
        if args.lift:
            await client.unsuppress(args.value, kind=kind)
            print(f"lifted the suppression of {kind} {args.value}")
        else:
            await client.suppress(args.value, kind=kind, reason=args.reason)
            print(f"suppressed {kind} {args.value}: {args.reason}")
        return 0

    return with_client(args, action, temporal=False)


def cmd_unsubscribe(args: argparse.Namespace) -> int:
    """``journeys unsubscribe``."""

    async def action(client: JourneysClient) -> int:
        prefs = await client.unsubscribe(args.token)
        print(
            f"applied: {prefs.recipient_id} unsubscribed={prefs.unsubscribed} topics={prefs.topics}"
        )
        return 0

    return with_client(args, action, temporal=False)


def _track_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("recipient")
    c.add_argument("event")
    c.add_argument("--data", metavar="JSON", help="JSON object with the event's data")


def _messages_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("--recipient", metavar="ID", help="the recipient's messages")
    c.add_argument("--run", metavar="RUN", help="run id or workflow id")
    c.add_argument("--limit", type=positive, default=100, help="at most this many (default: 100)")
    c.add_argument("--json", action="store_true", help="print JSON")


def _message_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("id")
    c.add_argument("--json", action="store_true", help="print JSON")


def _preferences_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("recipient")
    sub_or_not = c.add_mutually_exclusive_group()
    sub_or_not.add_argument("--unsubscribe", action="store_true", help="from all marketing")
    sub_or_not.add_argument("--resubscribe", action="store_true", help="undo --unsubscribe")
    channels = ", ".join(CHANNELS)
    c.add_argument(
        "--opt-out",
        action="append",
        default=[],
        metavar="CHANNEL",
        choices=list(CHANNELS),
        help=f"no messages on this channel ({channels}); repeat for more",
    )
    c.add_argument(
        "--opt-in",
        action="append",
        default=[],
        metavar="CHANNEL",
        choices=list(CHANNELS),
        help="undo --opt-out for this channel; repeat for more",
    )
    c.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="NAME=on|off",
        help="subscribe to (on) or leave (off) a topic; repeat for more",
    )


def _suppress_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("value", help="a recipient id, or an address with --address")
    c.add_argument("--address", action="store_true", help="VALUE is an address")
    c.add_argument(
        "--reason",
        default="suppressed by an operator",
        help="kept with the suppression (default: %(default)s)",
    )
    c.add_argument("--lift", action="store_true", help="lift the suppression instead")


def _unsubscribe_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("token", help="the token of an unsubscribe link")


COMMANDS = [
    Command(
        "track",
        cmd_track,
        "record an event for a recipient and signal their journeys",
        _track_options,
    ),
    Command(
        "messages",
        cmd_messages,
        "list the messages of a recipient or a run (needs only the store)",
        _messages_options,
        journeys_dir=False,
    ),
    Command("message", cmd_message, "show one message by id", _message_options, journeys_dir=False),
    Command(
        "preferences",
        cmd_preferences,
        "show or change a recipient's preferences",
        _preferences_options,
        journeys_dir=False,
    ),
    Command(
        "suppress",
        cmd_suppress,
        "stop every message to a person or address",
        _suppress_options,
        journeys_dir=False,
    ),
    Command(
        "unsubscribe",
        cmd_unsubscribe,
        "apply a signed unsubscribe token",
        _unsubscribe_options,
        journeys_dir=False,
    ),
]
"""The commands of people: events, messages and consent."""
