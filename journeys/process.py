"""How a journeys process ends: its exit codes, signals, and leaving without a crash.

**Why processes leave with** :func:`exit_process`. The Temporal SDK runs its core on Rust
(Tokio) threads, which call back into Python to complete each awaited call: they take
the GIL, schedule the result on the event loop, and release the GIL when done. Scheduling
writes to the loop's wake-up socket, which lets the GIL go for a moment; the main thread
can then see the result, finish the command and start interpreter finalization before
the Rust thread has taken the GIL back. CPython (before 3.14) ends a thread that asks for
the GIL during finalization with ``pthread_exit``, whose forced unwind runs PyO3's GIL
guard destructor on a thread state that is no longer current: ``Fatal Python error:
PyGILState_Release``, SIGABRT, exit 134 (temporalio/sdk-python#300). No Python code can
wait for those threads, so a process that has used Temporal does not finalize: it
cleans up what it opened itself (every command closes its clients, stores and servers
before returning), flushes its output and logs, and leaves with ``os._exit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any, NoReturn

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "SERVER_SHUTDOWN_GRACE",
    "STOP_SIGNALS",
    "WORKER_SHUTDOWN_GRACE",
    "exit_process",
    "run_until_stopped",
]

EXIT_OK = 0
"""Done; also a long-running command stopped by SIGINT or SIGTERM."""
EXIT_FAILED = 1
"""Problems found or the request refused: invalid journeys, an unknown run, bad input."""
EXIT_USAGE = 2
"""The command line is wrong: an unknown option, a missing or malformed argument."""
EXIT_UNAVAILABLE = 3
"""The engine cannot be reached: Temporal or the store is down or misaddressed."""
EXIT_INTERRUPTED = 130
"""A one-shot command interrupted by Ctrl-C or SIGTERM before it finished."""

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals that stop a long-running command."""

WORKER_SHUTDOWN_GRACE = timedelta(seconds=10)
"""How long a stopping worker lets its running activities finish before cancelling them."""
SERVER_SHUTDOWN_GRACE = timedelta(seconds=10)
"""How long a stopping ``journeys serve`` lets open requests and connections finish.

Without a bound, a TLS connection whose client went away without closing it holds the
shutdown for asyncio's 30-second TLS close.
"""


def exit_process(code: int) -> NoReturn:
    """End the process with ``code``, without interpreter finalization (see the module)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    logging.shutdown()
    os._exit(code)


def run_until_stopped(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run ``main()`` in a new event loop; the first SIGINT or SIGTERM stops it cleanly.

    The signal cancels ``main``'s task, so its ``finally`` blocks and ``async with``
    exits close what it opened, and then the process exits 0: stopping a long-running
    command is what the operator asked for. A second signal while it cleans up is
    reported and otherwise waited out.

    Returns:
        ``main``'s exit code, or :data:`EXIT_OK` once stopped by a signal.

    """

    async def go() -> int:
        loop = asyncio.get_running_loop()
        stopping: list[signal.Signals] = []

        def stop(sig: signal.Signals) -> None:
            if stopping:
                print(f"journeys: {sig.name} again: still stopping", file=sys.stderr, flush=True)
                return
            stopping.append(sig)
            inner.cancel()

        inner = asyncio.ensure_future(main())
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stop, sig)
        try:
            return await inner
        except asyncio.CancelledError:
            if not stopping:
                raise
            return EXIT_OK
        finally:
            if not inner.done():  # our own task was cancelled from outside
                inner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await inner
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)

    return asyncio.run(go())
