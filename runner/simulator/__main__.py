"""``python -m runner.simulator``: serve until SIGINT/SIGTERM (or stdin EOF with ``--exit-on-stdin-eof``).

Prints exactly one stdout line, ``llmperf-simulator listening on http://HOST:PORT``, once bound.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Coroutine
from typing import Any

from runner.simulator.config import add_arguments, config_from_args
from runner.simulator.server import load_key, serve


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m runner.simulator", description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="also stop when stdin closes, i.e. the parent died (used by SimulatorProcess)",
    )
    return parser


def _stop_on_stdin_eof(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    # os.read, not sys.stdin: a daemon thread parked inside a buffered reader's lock aborts shutdown.
    with contextlib.suppress(OSError):
        while os.read(0, 4096):
            pass
    with contextlib.suppress(RuntimeError):  # the loop may already be closed
        loop.call_soon_threadsafe(stop.set)


async def _serve_until_stopped(args: argparse.Namespace) -> None:
    config = config_from_args(args)
    loop, stop = asyncio.get_running_loop(), asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.exit_on_stdin_eof:
        threading.Thread(target=_stop_on_stdin_eof, args=(loop, stop), daemon=True).start()
    await serve(config, stop=stop)


def _run(main: Coroutine[Any, Any, None]) -> None:
    """uvloop when importable: finer timers and cheaper I/O than the default loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        load_key(config_from_args(args))
    except ValueError as exc:
        parser.error(str(exc))
    _run(_serve_until_stopped(args))


if __name__ == "__main__":
    main()
