"""The ``journeys`` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, NoReturn

from definitions.channels import CHANNELS
from definitions.compiler import Library
from definitions.errors import ConfigurationError, EngineUnavailableError, JourneysError
from definitions.graph import to_mermaid
from journeys._cli_args import json_object, positive, usage
from journeys._cli_args import recipients as parse_recipients
from journeys._process import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    STOP_SIGNALS,
    WORKER_SHUTDOWN_GRACE,
    exit_process,
    run_until_stopped,
)
from journeys.config import Settings, load_settings
from journeys.models import TriggerStatus
from journeys.report import plural

__all__ = ["main"]


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


def _directory(args: argparse.Namespace, settings: Settings, *, required: bool = False) -> Path:
    """The journeys directory: ``--dir``, else ``directory`` in the configuration.

    Raises:
        ConfigurationError: ``required`` and there is no such directory.

    """
    directory = Path(getattr(args, "dir", None) or settings.directory)
    if required and not directory.is_dir():
        where = "--dir" if getattr(args, "dir", None) else "`directory` in journeys.toml"
        raise ConfigurationError(
            f"no journeys directory at {directory.absolute()} (from {where}); "
            "set `directory` in journeys.toml or JOURNEYS_DIRECTORY, or pass --dir"
        )
    return directory


def _with_client(
    args: argparse.Namespace,
    action: Callable[[Any], Coroutine[Any, Any, int]],
    *,
    temporal: bool = True,
    journeys_dir: bool = False,
) -> int:
    from journeys.client import JourneysClient

    settings = _settings(args)
    directory = _directory(args, settings, required=journeys_dir)

    async def go() -> int:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, _abandon)
        async with await JourneysClient.connect(
            settings, directory=directory, temporal=temporal
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


# -- commands -----------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    directory = _directory(args, settings, required=True)
    library = Library(directory)
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
        f"{plural(len(library.template_names()), 'template')} in {directory}"
    )
    return EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    settings = _settings(args)
    plan = Library(_directory(args, settings, required=True)).compile(args.name)
    sys.stdout.write(to_mermaid(plan))
    return 0


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
    data = json_object(args, args.data, "--data")
    recipients = parse_recipients(args)

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
                f"  {plural(handle.recipients, 'recipient')}, started in cohorts by the workflow "
                f"{handle.journey}/{handle.trigger_id}"
            )
        for run in handle.runs:
            note = "" if run.started else "  (already in this journey: kept that run)"
            print(f"  {run.recipient_id}  {run.run_id}  {run.workflow_id}{note}")
        if args.wait:
            await _follow(client, handle.trigger_id)
        return 0

    return _with_client(args, action, journeys_dir=True)


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
    data = json_object(args, args.data, "--data")

    async def action(client: Any) -> int:
        result = await client.track(args.recipient, args.event, data)
        started = f"; started {plural(len(result.started), 'journey')}" if result.started else ""
        print(
            f"recorded {args.event} for {args.recipient}; reached "
            f"{plural(result.reached, 'running journey')}{started}"
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
        usage(args, "give --recipient ID and/or --run RUN")

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
    profile = json_object(args, args.profile, "--profile") if args.profile else None
    data = json_object(args, args.data, "--data")

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
            usage(args, f"--topic expects NAME=on|off, found {item!r}")
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

    settings = _settings(args)
    configure_logging()
    asyncio.run(run_worker(settings))  # it stops cleanly on SIGINT and SIGTERM itself
    return EXIT_OK


def cmd_dev(args: argparse.Namespace) -> int:
    from journeys.dev.run import run_dev

    return run_dev(_settings(args), worker=not args.no_worker)


def cmd_inbox(args: argparse.Namespace) -> int:
    from journeys.dev.text import run_inbox

    return run_inbox(_settings(args), args.id, as_json=args.json, clear=args.clear)


def cmd_demo(args: argparse.Namespace) -> int:
    from journeys.demo import run_demo

    return run_demo(keep=args.keep, ui_port=args.ui_port)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from journeys.client import JourneysClient
    from journeys.server import create_app

    settings = _settings(args)
    server = settings.server
    certfile = args.certfile or server.certfile
    keyfile = args.keyfile or server.keyfile
    if bool(certfile) != bool(keyfile):
        usage(args, "give both --certfile and --keyfile, or neither")
    directory = _directory(args, settings)
    if not (server.site_id and server.api_key) and not server.tokens:
        print(
            "journeys serve: warning: no credentials are configured ([server] site_id with "
            "JOURNEYS_SERVER_API_KEY, or JOURNEYS_SERVER_TOKENS): every request will be "
            "refused",
            file=sys.stderr,
        )

    async def go() -> int:
        # Connected before serving: an unreachable engine is one line and exit 3, not a
        # failed application startup with a traceback.
        async with await JourneysClient.connect(settings, directory=directory) as client:
            config = uvicorn.Config(
                create_app(settings, client),
                host=args.host or server.host,
                port=args.port or server.port,
                ssl_certfile=certfile,
                ssl_keyfile=keyfile,
                log_level="info",
            )
            api = uvicorn.Server(config)
            # uvicorn's own signal handlers re-raise the signal once it has stopped (exit
            # 143, or a KeyboardInterrupt): run_until_stopped handles signals instead.
            api.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
            serving = asyncio.ensure_future(api.serve())
            try:
                await asyncio.shield(serving)
            except asyncio.CancelledError:  # stopped: finish open requests, then the lifespan
                api.should_exit = True
                await serving
        return EXIT_OK

    return run_until_stopped(go)


def cmd_migrate(args: argparse.Namespace) -> int:
    from journeys.store import Store

    settings = _settings(args)

    async def go() -> None:
        store = await Store.open(settings.store.url)
        await store.close()

    from sqlalchemy.engine import make_url

    asyncio.run(go())
    shown = make_url(settings.store.url).render_as_string(hide_password=True)
    print(f"store at {shown} is up to date")
    return 0


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

    def add(
        name: str,
        func: Callable[[argparse.Namespace], int],
        text: str,
        *,
        journeys_dir: bool = True,
        configured: bool = True,
    ) -> argparse.ArgumentParser:
        parents = [common if configured else unread]
        command = sub.add_parser(name, help=text, description=text, parents=parents)
        if journeys_dir:
            command.add_argument(
                "--dir", help="journeys directory (default: `directory` in the configuration)"
            )
        command.set_defaults(func=func, command_parser=command)
        return command

    add("validate", cmd_validate, "check every journey, template and segment file")
    add("graph", cmd_graph, "print a journey as a Mermaid flowchart").add_argument("name")
    c = add("trigger", cmd_trigger, "start a journey for recipients")
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
    c = add(
        "status",
        cmd_status,
        "show a run (run id or workflow id) or a trigger (trg_…)",
        journeys_dir=False,
    )
    c.add_argument("id")
    c.add_argument("--recipient", metavar="ID", help="with a trigger id: that recipient's run")
    c.add_argument("--json", action="store_true", help="print JSON")
    c = add("cancel", cmd_cancel, "cancel a run or every run of a trigger", journeys_dir=False)
    c.add_argument("id", help="a run id, workflow id or trigger id (trg_…)")
    c = add("track", cmd_track, "record an event for a recipient and signal their journeys")
    c.add_argument("recipient")
    c.add_argument("event")
    c.add_argument("--data", metavar="JSON", help="JSON object with the event's data")
    c = add(
        "messages",
        cmd_messages,
        "list the messages of a recipient or a run (needs only the store)",
        journeys_dir=False,
    )
    c.add_argument("--recipient", metavar="ID", help="the recipient's messages")
    c.add_argument("--run", metavar="RUN", help="run id or workflow id")
    c.add_argument("--limit", type=positive, default=100, help="at most this many (default: 100)")
    c.add_argument("--json", action="store_true", help="print JSON")
    c = add("message", cmd_message, "show one message by id", journeys_dir=False)
    c.add_argument("id")
    c.add_argument("--json", action="store_true", help="print JSON")
    c = add("preview", cmd_preview, "render a template for a recipient or a sample profile")
    c.add_argument("template")
    c.add_argument("--channel", required=True, choices=list(CHANNELS), help="the variant to render")
    who = c.add_mutually_exclusive_group()
    who.add_argument("--recipient", metavar="ID", help="a stored profile")
    who.add_argument("--profile", metavar="JSON", help="a sample profile")
    c.add_argument("--data", metavar="JSON", help="trigger data (trigger.*)")
    c = add(
        "preferences",
        cmd_preferences,
        "show or change a recipient's preferences",
        journeys_dir=False,
    )
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
    c = add(
        "suppress", cmd_suppress, "stop every message to a person or address", journeys_dir=False
    )
    c.add_argument("value", help="a recipient id, or an address with --address")
    c.add_argument("--address", action="store_true", help="VALUE is an address")
    c.add_argument(
        "--reason",
        default="suppressed by an operator",
        help="kept with the suppression (default: %(default)s)",
    )
    c.add_argument("--lift", action="store_true", help="lift the suppression instead")
    c = add("unsubscribe", cmd_unsubscribe, "apply a signed unsubscribe token", journeys_dir=False)
    c.add_argument("token", help="the token of an unsubscribe link")
    add(
        "worker",
        cmd_worker,
        "run a worker (as `python -m workers`) until SIGINT or SIGTERM; in-flight activities "
        f"get {WORKER_SHUTDOWN_GRACE.total_seconds():g} s to finish",
        journeys_dir=False,
    )
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
        "run a demo journey end to end with everything embedded (needs no configuration)",
        journeys_dir=False,
        configured=False,
    )
    c.add_argument(
        "--keep",
        action="store_true",
        help="keep the server and its UI up afterwards, until Ctrl-C or SIGTERM, "
        "so the printed Temporal UI links work",
    )
    c.add_argument(
        "--ui-port",
        type=positive,
        metavar="PORT",
        help="the Temporal UI's port (default: 8233, or a free one)",
    )
    c = add(
        "serve",
        cmd_serve,
        "run the HTTP API (Customer.io Track API, broadcasts, native) until SIGINT or SIGTERM",
    )
    c.add_argument("--host", help="address to listen on (default: [server] host)")
    c.add_argument("--port", type=positive, help="port (default: [server] port)")
    c.add_argument("--certfile", help="TLS certificate (PEM): serve HTTPS")
    c.add_argument("--keyfile", help="TLS private key (PEM)")
    add("migrate", cmd_migrate, "bring the store's schema up to date", journeys_dir=False)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see :mod:`journeys._process`)."""
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


if __name__ == "__main__":
    sys.exit(main())
