"""``journeys worker``, ``dev``, ``inbox``, ``demo``, ``serve`` and ``migrate``: processes.

The long-running ones stop cleanly on SIGINT or SIGTERM (:mod:`journeys.process`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from journeys.cli.args import positive, usage
from journeys.cli.base import Command, directory, settings
from journeys.client import JourneysClient
from journeys.process import (
    EXIT_OK,
    SERVER_SHUTDOWN_GRACE,
    WORKER_SHUTDOWN_GRACE,
    run_until_stopped,
)

__all__ = ["COMMANDS"]


def cmd_worker(args: argparse.Namespace) -> int:
    """``journeys worker``."""
    from workers.worker import configure_logging, run_worker

    configured = settings(args)
    configure_logging()
    asyncio.run(run_worker(configured))  # it stops cleanly on SIGINT and SIGTERM itself
    return EXIT_OK


def cmd_dev(args: argparse.Namespace) -> int:
    """``journeys dev``."""
    from journeys.dev.run import run_dev

    return run_dev(settings(args), worker=not args.no_worker)


def cmd_inbox(args: argparse.Namespace) -> int:
    """``journeys inbox``."""
    from journeys.dev.text import run_inbox

    return run_inbox(settings(args), args.id, as_json=args.json, clear=args.clear)


def cmd_demo(args: argparse.Namespace) -> int:
    """``journeys demo``."""
    from journeys.demo import run_demo

    return run_demo(keep=args.keep, ui_port=args.ui_port)


def cmd_serve(args: argparse.Namespace) -> int:
    """``journeys serve``."""
    import uvicorn

    from journeys.server import create_app

    configured = settings(args)
    server = configured.server
    certfile = args.certfile or server.certfile
    keyfile = args.keyfile or server.keyfile
    if bool(certfile) != bool(keyfile):
        usage(args, "give both --certfile and --keyfile, or neither")
    journeys = directory(args, configured)
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
        async with await JourneysClient.connect(configured, directory=journeys) as client:
            config = uvicorn.Config(
                create_app(configured, client),
                host=args.host or server.host,
                port=args.port or server.port,
                ssl_certfile=certfile,
                ssl_keyfile=keyfile,
                log_level="info",
                timeout_graceful_shutdown=int(SERVER_SHUTDOWN_GRACE.total_seconds()),
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
    """``journeys migrate``."""
    from sqlalchemy.engine import make_url

    from journeys.store import Store

    configured = settings(args)

    async def go() -> None:
        store = await Store.open(configured.store.url)
        await store.close()

    asyncio.run(go())
    shown = make_url(configured.store.url).render_as_string(hide_password=True)
    print(f"store at {shown} is up to date")
    return 0


def _dev_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("--no-worker", action="store_true", help="start only the server")


def _inbox_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("id", nargs="?", help="one message: its number or message id")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.add_argument("--clear", action="store_true", help="forget every caught message")


def _demo_options(c: argparse.ArgumentParser) -> None:
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


def _serve_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("--host", help="address to listen on (default: [server] host)")
    c.add_argument("--port", type=positive, help="port (default: [server] port)")
    c.add_argument("--certfile", help="TLS certificate (PEM): serve HTTPS")
    c.add_argument("--keyfile", help="TLS private key (PEM)")


COMMANDS = [
    Command(
        "worker",
        cmd_worker,
        "run a worker (as `python -m workers`) until SIGINT or SIGTERM; in-flight activities "
        f"get {WORKER_SHUTDOWN_GRACE.total_seconds():g} s to finish",
        journeys_dir=False,
    ),
    Command(
        "dev",
        cmd_dev,
        "start the Temporal dev server (UI on :8233), a worker, catchers and the inbox",
        _dev_options,
        journeys_dir=False,
    ),
    Command(
        "inbox", cmd_inbox, "show what `journeys dev` caught", _inbox_options, journeys_dir=False
    ),
    Command(
        "demo",
        cmd_demo,
        "run a demo journey end to end with everything embedded (needs no configuration)",
        _demo_options,
        journeys_dir=False,
        configured=False,
    ),
    Command(
        "serve",
        cmd_serve,
        "run the HTTP API (Customer.io Track API, broadcasts, native) until SIGINT or SIGTERM",
        _serve_options,
    ),
    Command(
        "migrate",
        cmd_migrate,
        "bring the store's schema up to date",
        journeys_dir=False,
    ),
]
"""The commands that run processes: the worker, the servers, the demo, the migration."""
