"""The ``journeys`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from definitions.channels import CHANNELS
from definitions.compiler import Library
from definitions.errors import ConfigurationError, JourneysError
from definitions.graph import to_mermaid
from definitions.values import loads
from journeys.config import Settings, load_settings
from journeys.models import TriggerStatus

__all__ = ["main"]


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


def _directory(args: argparse.Namespace, settings: Settings) -> Path:
    return Path(getattr(args, "dir", None) or settings.directory)


def _json(text: str | None, what: str) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = loads(text)
    except ValueError as exc:
        raise SystemExit(f"journeys: {what}: {exc}") from None
    if not isinstance(value, dict):
        raise SystemExit(f"journeys: {what}: expected a JSON object, found {text!r}")
    return value


def _with_client(
    args: argparse.Namespace,
    action: Callable[[Any], Coroutine[Any, Any, int]],
    *,
    temporal: bool = True,
) -> int:
    from journeys.client import JourneysClient

    settings = _settings(args)

    async def go() -> int:
        async with await JourneysClient.connect(
            settings, directory=_directory(args, settings), temporal=temporal
        ) as client:
            return await action(client)

    return asyncio.run(go())


# -- commands -----------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    directory = _directory(args, settings)
    if not directory.is_dir():
        print(f"journeys: no journeys directory at {directory}", file=sys.stderr)
        return 1
    library = Library(directory)
    problems = library.check()
    for problem in problems:
        print(problem.format(), file=sys.stderr)
    if problems:
        count = len(problems)
        print(f"{count} problem{'s' if count != 1 else ''} found", file=sys.stderr)
        return 1
    names = library.names()
    print(
        f"ok: {len(names)} journeys ({', '.join(names)}), "
        f"{len(library.template_names())} templates in {directory}"
    )
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    settings = _settings(args)
    plan = Library(_directory(args, settings)).compile(args.name)
    sys.stdout.write(to_mermaid(plan))
    return 0


def _recipients(args: argparse.Namespace) -> list[Any]:
    """``--to`` ids, and the lines of ``--to-file``: ids, or JSON objects with an ``id``."""
    recipients: list[Any] = list(args.to or [])
    if args.to_file:
        path = Path(args.to_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigurationError(f"--to-file: cannot read {path}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigurationError(
                f"--to-file: {path}: expected UTF-8 text, found byte 0x{exc.object[exc.start]:02x}"
                f" at byte {exc.start}"
            ) from None
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line:
                continue
            if line.startswith("{"):
                try:
                    recipients.append(loads(line))
                except ValueError as exc:
                    raise ConfigurationError(
                        f"{path}:{number}: expected a JSON object or an id, found {line[:40]!r}"
                        f" ({exc})"
                    ) from None
            else:
                recipients.append(line)
    if not recipients:
        raise ConfigurationError("expected recipients: --to ID … or --to-file FILE")
    return recipients


async def _follow(client: Any, trigger_id: str) -> Any:
    """Redraw a trigger's progress bar until every recipient has finished."""
    from journeys.report import progress_bar

    tty = sys.stdout.isatty()
    shown = ""
    while True:
        status = await client.status(trigger_id)
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
    data = _json(args.data, "--data")
    recipients = _recipients(args)

    async def action(client: Any) -> int:
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
                f"  {handle.recipients} recipients, started in cohorts by the workflow "
                f"{handle.journey}/{handle.trigger_id}"
            )
        for run in handle.runs:
            note = "" if run.started else "  (already in this journey: kept that run)"
            print(f"  {run.recipient_id}  {run.run_id}  {run.workflow_id}{note}")
        if args.wait:
            await _follow(client, handle.trigger_id)
        return 0

    return _with_client(args, action)


def cmd_status(args: argparse.Namespace) -> int:
    from journeys.report import run_text, status_json, trigger_text

    async def action(client: Any) -> int:
        status = await client.status(args.id, recipient=args.recipient)
        if args.json:
            print(status_json(status))
        elif isinstance(status, TriggerStatus):
            print(trigger_text(status))
        else:
            print(run_text(status))
        return 0

    return _with_client(args, action)


def cmd_cancel(args: argparse.Namespace) -> int:
    from journeys.report import run_text, trigger_text

    async def action(client: Any) -> int:
        status = await client.cancel(args.id)
        print(trigger_text(status) if isinstance(status, TriggerStatus) else run_text(status))
        return 0

    return _with_client(args, action)


def cmd_track(args: argparse.Namespace) -> int:
    data = _json(args.data, "--data")

    async def action(client: Any) -> int:
        result = await client.track(args.recipient, args.event, data)
        started = f"; started {len(result.started)}" if result.started else ""
        print(
            f"recorded {args.event} for {args.recipient}; reached {result.reached} "
            f"running journeys{started}"
        )
        return 0

    return _with_client(args, action)


def _message_line(message: Any) -> str:
    when = message.updated_at.strftime("%Y-%m-%d %H:%M:%S") if message.updated_at else "-"
    why = f"  ({message.reason})" if message.reason else ""
    return (
        f"{when}  {message.state:<8} {message.channel:<8} {message.step:<16} "
        f"{message.address or '-'}{why}\n    {message.id}"
    )


def cmd_messages(args: argparse.Namespace) -> int:
    from journeys.report import as_json

    if args.recipient is None and args.run is None:
        raise SystemExit("journeys messages: give --recipient ID and/or --run RUN")

    async def action(client: Any) -> int:
        found = await client.messages(recipient=args.recipient, run=args.run, limit=args.limit)
        if args.json:
            print(as_json(found))
        elif not found:
            print("no messages")
        for message in [] if args.json else found:
            print(_message_line(message))
        return 0

    return _with_client(args, action, temporal=False)


def cmd_message(args: argparse.Namespace) -> int:
    from journeys.report import as_json

    async def action(client: Any) -> int:
        message = await client.message_status(args.id)
        print(as_json(message) if args.json else _message_line(message))
        return 0

    return _with_client(args, action, temporal=False)


def cmd_preview(args: argparse.Namespace) -> int:
    profile = _json(args.profile, "--profile") if args.profile else None
    data = _json(args.data, "--data")

    async def action(client: Any) -> int:
        rendered = await client.preview(
            args.template, args.channel, recipient=args.recipient, profile=profile, data=data
        )
        for key, value in rendered.items():
            text = value if isinstance(value, str) else json.dumps(value, indent=2)
            print(f"--- {key}\n{text.rstrip()}")
        return 0

    return _with_client(args, action, temporal=False)


def cmd_preferences(args: argparse.Namespace) -> int:
    channels = {**dict.fromkeys(args.opt_out, True), **dict.fromkeys(args.opt_in, False)}
    topics: dict[str, bool] = {}
    for item in args.topic:
        name, _, value = item.partition("=")
        if value not in ("on", "off") or not name:
            raise SystemExit(f"journeys preferences: --topic expects NAME=on|off, found {item!r}")
        topics[name] = value == "on"
    unsubscribed = True if args.unsubscribe else False if args.resubscribe else None

    async def action(client: Any) -> int:
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

    return _with_client(args, action, temporal=False)


def cmd_suppress(args: argparse.Namespace) -> int:
    kind = "address" if args.address else "person"

    async def action(client: Any) -> int:
        if args.lift:
            await client.unsuppress(args.value, kind=kind)
            print(f"lifted the suppression of {kind} {args.value}")
        else:
            await client.suppress(args.value, kind=kind, reason=args.reason)
            print(f"suppressed {kind} {args.value}: {args.reason}")
        return 0

    return _with_client(args, action, temporal=False)


def cmd_unsubscribe(args: argparse.Namespace) -> int:
    async def action(client: Any) -> int:
        prefs = await client.unsubscribe(args.token)
        print(
            f"applied: {prefs.recipient_id} unsubscribed={prefs.unsubscribed} topics={prefs.topics}"
        )
        return 0

    return _with_client(args, action, temporal=False)


def cmd_worker(args: argparse.Namespace) -> int:
    from workers.worker import configure_logging, run_worker

    configure_logging()
    asyncio.run(run_worker(_settings(args)))
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    from journeys.dev.run import run_dev

    return run_dev(_settings(args), worker=not args.no_worker)


def cmd_inbox(args: argparse.Namespace) -> int:
    from journeys.dev.text import run_inbox

    return run_inbox(_settings(args), args.id, as_json=args.json, clear=args.clear)


def cmd_demo(args: argparse.Namespace) -> int:
    from journeys.demo import run_demo

    return run_demo(keep=args.keep)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from journeys.server import create_app

    settings = _settings(args)
    server = settings.server
    certfile = args.certfile or server.certfile
    keyfile = args.keyfile or server.keyfile
    if bool(certfile) != bool(keyfile):
        raise SystemExit("journeys serve: give both --certfile and --keyfile, or neither")
    if not (server.site_id and server.api_key) and not server.tokens:
        print(
            "journeys serve: warning: no credentials are configured ([server] site_id with "
            "JOURNEYS_SERVER_API_KEY, or JOURNEYS_SERVER_TOKENS): every request will be "
            "refused",
            file=sys.stderr,
        )
    uvicorn.run(
        create_app(settings),
        host=args.host or server.host,
        port=args.port or server.port,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        log_level="info",
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from journeys.store import Store

    settings = _settings(args)

    async def go() -> None:
        store = await Store.open(settings.store.url)
        await store.close()

    asyncio.run(go())
    print(f"store at {settings.store.url} is up to date")
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line's parser."""
    top = argparse.ArgumentParser(
        prog="journeys",
        description="Customer journeys as YAML, run as durable Temporal workflows.",
    )
    top.add_argument("--config", help="configuration file (default: ./journeys.toml)")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str,
        func: Callable[[argparse.Namespace], int],
        text: str,
        *,
        journeys_dir: bool = True,
    ) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=text, description=text)
        if journeys_dir:
            command.add_argument("--dir", help="journeys directory (default: from the config)")
        command.set_defaults(func=func)
        return command

    add("validate", cmd_validate, "check every journey, template and segment file")
    add("graph", cmd_graph, "print a journey as a Mermaid flowchart").add_argument("name")
    c = add("trigger", cmd_trigger, "start a journey for recipients")
    c.add_argument("name", help="the journey")
    c.add_argument("--to", nargs="+", metavar="ID", help="recipient ids")
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
    c.add_argument("--data", help="JSON object the templates see as trigger.*")
    c.add_argument("--idempotency-key", help="makes retrying this command safe")
    c = add("status", cmd_status, "show a run (run id or workflow id) or a trigger (trg_…)")
    c.add_argument("id")
    c.add_argument("--recipient", metavar="ID", help="with a trigger id: that recipient's run")
    c.add_argument("--json", action="store_true", help="print JSON")
    add("cancel", cmd_cancel, "cancel a run or every run of a trigger").add_argument("id")
    c = add("track", cmd_track, "record an event for a recipient and signal their journeys")
    c.add_argument("recipient")
    c.add_argument("event")
    c.add_argument("--data", help="JSON object with the event's data")
    c = add("messages", cmd_messages, "list the messages of a recipient or a run")
    c.add_argument("--recipient", metavar="ID")
    c.add_argument("--run", metavar="RUN", help="run id or workflow id")
    c.add_argument("--limit", type=int, default=100)
    c.add_argument("--json", action="store_true", help="print JSON")
    c = add("message", cmd_message, "show one message by id")
    c.add_argument("id")
    c.add_argument("--json", action="store_true", help="print JSON")
    c = add("preview", cmd_preview, "render a template for a recipient or a sample profile")
    c.add_argument("template")
    c.add_argument("--channel", required=True, choices=list(CHANNELS))
    who = c.add_mutually_exclusive_group()
    who.add_argument("--recipient", metavar="ID", help="a stored profile")
    who.add_argument("--profile", metavar="JSON", help="a sample profile")
    c.add_argument("--data", metavar="JSON", help="trigger data (trigger.*)")
    c = add("preferences", cmd_preferences, "show or change a recipient's preferences")
    c.add_argument("recipient")
    sub_or_not = c.add_mutually_exclusive_group()
    sub_or_not.add_argument("--unsubscribe", action="store_true", help="from all marketing")
    sub_or_not.add_argument("--resubscribe", action="store_true")
    c.add_argument(
        "--opt-out", action="append", default=[], metavar="CHANNEL", choices=list(CHANNELS)
    )
    c.add_argument(
        "--opt-in", action="append", default=[], metavar="CHANNEL", choices=list(CHANNELS)
    )
    c.add_argument("--topic", action="append", default=[], metavar="NAME=on|off")
    c = add("suppress", cmd_suppress, "stop every message to a person or address")
    c.add_argument("value", help="a recipient id, or an address with --address")
    c.add_argument("--address", action="store_true", help="VALUE is an address")
    c.add_argument("--reason", default="suppressed by an operator")
    c.add_argument("--lift", action="store_true", help="lift the suppression instead")
    add("unsubscribe", cmd_unsubscribe, "apply a signed unsubscribe token").add_argument("token")
    add("worker", cmd_worker, "run a worker (as `python -m workers`)", journeys_dir=False)
    c = add(
        "dev",
        cmd_dev,
        "start the Temporal dev server (UI on :8233), a worker, catchers and the inbox",
        journeys_dir=False,
    )
    c.add_argument("--no-worker", action="store_true", help="start only the server")
    c = add("inbox", cmd_inbox, "show what `journeys dev` caught", journeys_dir=False)
    c.add_argument("id", nargs="?", help="one message: its number or message id")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.add_argument("--clear", action="store_true", help="forget every caught message")
    c = add(
        "demo",
        cmd_demo,
        "run a demo journey end to end with everything embedded",
        journeys_dir=False,
    )
    c.add_argument("--keep", action="store_true", help="keep the server and UI up afterwards")
    c = add("serve", cmd_serve, "run the HTTP API (Customer.io Track API, broadcasts, native)")
    c.add_argument("--host", help="address to listen on (default: [server] host)")
    c.add_argument("--port", type=int, help="port (default: [server] port)")
    c.add_argument("--certfile", help="TLS certificate (PEM): serve HTTPS")
    c.add_argument("--keyfile", help="TLS private key (PEM)")
    add("migrate", cmd_migrate, "bring the store's schema up to date", journeys_dir=False)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = parser().parse_args(argv)
    # SIGTERM ends the command like Ctrl-C does, so servers it started are stopped too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        code: int = args.func(args)
    except JourneysError as exc:
        print(f"journeys: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
