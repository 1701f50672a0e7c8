"""``serve()``: run the API under uvicorn (one worker), optionally with the scheduler beside it.

The scheduler runs in a child process of its own session, so that only this server decides
when it stops: on SIGTERM or SIGINT uvicorn finishes the requests in flight, then the
scheduler is asked to stop (SIGTERM: it lets a running job finish) and, if it has not ended
after :data:`SCHEDULER_STOP_SECONDS`, is killed; then :func:`serve` returns (exit status 0).

``python -m api.server --port 8001`` runs it without the ``sentra-graph`` command.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.process import BaseProcess
from types import FrameType

import sqlalchemy as sa
import uvicorn

from api.app import create_app
from sentra_graph.config import ConfigError, Settings, get_settings
from sentra_graph.store import StoreError, open_store

log = logging.getLogger(__name__)

SCHEDULER_STOP_SECONDS = 60.0
"""How long a stopping scheduler may take to finish its running job before it is killed."""

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

GRACEFUL_SHUTDOWN_SECONDS = 10
"""How long uvicorn waits for requests in flight after SIGTERM."""


def _scheduler_main(settings: Settings) -> None:
    """Child process entry: leave the server's process group, then run the scheduler."""
    os.setsid()
    from jobs.scheduler import run_scheduler

    run_scheduler(settings)


def start_scheduler(settings: Settings) -> BaseProcess:
    """Start ``jobs.scheduler.run_scheduler(settings)`` in a fresh (spawned) child process."""
    process = multiprocessing.get_context("spawn").Process(
        target=_scheduler_main, args=(settings,), name="sentra-scheduler"
    )
    process.start()
    log.info("scheduler started in process %s", process.pid)
    return process


def stop_scheduler(process: BaseProcess, timeout: float = SCHEDULER_STOP_SECONDS) -> None:
    """Ask the scheduler to stop, wait up to ``timeout`` seconds, then kill it."""
    if process.is_alive():
        log.info("stopping the scheduler (process %s)", process.pid)
        process.terminate()
        process.join(timeout)
    if process.is_alive():
        log.warning("the scheduler did not stop within %.0f s: killing it", timeout)
        process.kill()
        process.join()
    log.info("scheduler ended with exit code %s", process.exitcode)


@contextmanager
def _signals_end_serving() -> Iterator[None]:
    """Make SIGTERM and SIGINT end :func:`serve` normally.

    uvicorn shuts down gracefully on either signal, then re-raises it with the handlers it
    found; with the default ones the process would die there, before the scheduler is stopped.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _served) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _served(signum: int, _frame: FrameType | None) -> None:
    log.info("%s: the server has stopped", signal.Signals(signum).name)


def serve(
    host: str,
    port: int,
    *,
    with_scheduler: bool = False,
    insecure_dev: bool = False,
    settings: Settings | None = None,
    access_log: bool = False,
) -> None:
    """Serve the API on ``host:port`` until SIGTERM or SIGINT.

    :param with_scheduler: also run the scheduler, in a child process.
    :param insecure_dev: allow starting with no API keys (every caller is then admin; the
        server says so in its log and in an ``X-Sentra-Insecure-Dev`` header on every response).
    :param access_log: log every request (off by default: it costs lookup throughput).
    :raises ConfigError: no API keys without ``insecure_dev``, or malformed ones.
    :raises StoreError: the store has no schema (``sentra-graph init`` not run).
    """
    settings = settings or get_settings()
    store = open_store(settings.database_url)
    try:
        store.require_schema()
    except sa.exc.OperationalError as error:
        log.warning(
            "the store is unreachable (%s); serving anyway, /readyz says 503 until it answers",
            type(error).__name__,
        )
    app = create_app(settings, store, insecure_dev=insecure_dev)
    scheduler = start_scheduler(settings) if with_scheduler else None
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=access_log,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    with _signals_end_serving():
        try:
            uvicorn.Server(config).run()
        finally:
            if scheduler is not None:
                stop_scheduler(scheduler)
            store.dispose()


def main(argv: list[str] | None = None) -> None:
    """``python -m api.server``: the same as ``sentra-graph serve``."""
    parser = argparse.ArgumentParser(prog="python -m api.server", description=serve.__doc__)
    settings = get_settings()
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    parser.add_argument("--with-scheduler", action="store_true")
    parser.add_argument("--insecure-dev", action="store_true")
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    try:
        serve(
            args.host,
            args.port,
            with_scheduler=args.with_scheduler,
            insecure_dev=args.insecure_dev,
            settings=settings,
            access_log=args.access_log,
        )
    except (ConfigError, StoreError) as error:
        parser.exit(1, f"{parser.prog}: error: {error}\n")


if __name__ == "__main__":
    main()
