"""``create_app()``: the FastAPI service that gateways, analysts and admins call.

Where things are: ``routes/`` (thin routes, one module per audience), ``deps.py`` (named
dependencies: keys and state), ``state.py`` (served snapshot, keys, poller), ``snapshot.py``
(the in-memory decisions), ``queries.py`` (store reads for analysts and admins), ``runs.py``
(detection runs in child processes), ``metrics.py`` and ``middleware.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from api.auth import KeyConfigError, parse_api_keys
from api.middleware import InsecureDevMiddleware, MetricsMiddleware
from api.routes import admin, analyst, banlist, clusters, ops
from api.routes.lookup import add_lookup_routes
from api.runs import RunLauncher, child_env
from api.state import ApiState, NotReady
from sentra_graph import __version__
from sentra_graph.config import ConfigError, Settings, get_settings
from sentra_graph.store import Store, open_store

log = logging.getLogger(__name__)

INSECURE_WARNING = (
    "INSECURE DEV MODE: no API keys configured (--insecure-dev); every caller gets every "
    "scope, including admin. Never expose this server."
)


def _not_ready(request: Request, error: Exception) -> JSONResponse:
    refresh = request.app.state.api.settings.refresh_seconds
    return JSONResponse(
        {"detail": str(error)},
        status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(max(1, round(refresh)))},
    )


def create_app(
    settings: Settings | None = None,
    store: Store | None = None,
    *,
    insecure_dev: bool = False,
    run_command: Sequence[str] | None = None,
    isolate_loads: bool = True,
    freeze_heap: bool = True,
) -> FastAPI:
    """Build the API over ``store`` (default: the configured one).

    :param settings: default :func:`~sentra_graph.config.get_settings`.
    :param insecure_dev: allow starting with no API keys (then every caller is admin).
    :param run_command: what ``POST /v1/runs`` starts (default ``python -m sentra_graph run``).
    :param isolate_loads: build snapshots in a worker process (False: in a thread, which is
        quicker to start and fine for small stores and tests).
    :param freeze_heap: after each snapshot swap, collect garbage and freeze the heap so later
        collections skip it (False for an app sharing its process, e.g. with other tests).
    :raises ConfigError: ``SENTRA_API_KEYS`` is malformed, or empty without ``insecure_dev``.
    """
    settings = settings or get_settings()
    store = store or open_store(settings.database_url)
    try:
        configured = parse_api_keys(settings.api_keys)
    except KeyConfigError as error:
        raise ConfigError(str(error)) from None
    if not configured and not insecure_dev:
        raise ConfigError(
            "SENTRA_API_KEYS is empty: set it (e.g. SENTRA_API_KEYS='gw-secret:gateway'), "
            "or pass --insecure-dev to run without keys on a development machine"
        )
    launcher = RunLauncher(store, run_command, child_env(settings, store))
    state = ApiState(
        settings,
        store,
        configured,
        launcher,
        insecure=not configured,
        isolate_loads=isolate_loads,
        freeze_heap=freeze_heap,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if state.insecure:
            log.warning(INSECURE_WARNING)
        poller = asyncio.create_task(state.refresh_forever(), name="snapshot-refresh")
        try:
            yield
        finally:
            poller.cancel()
            with suppress(asyncio.CancelledError):
                await poller
            await launcher.shutdown()
            state.loader.shutdown()

    app = FastAPI(
        title="sentra-graph",
        version=__version__,
        summary="Risk lookups for gateways; farms, feedback and allow-lists for analysts.",
        lifespan=lifespan,
    )
    app.state.api = state
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    if state.insecure:
        app.add_middleware(InsecureDevMiddleware)
    app.add_exception_handler(NotReady, _not_ready)
    add_lookup_routes(app, settings.gateway_account_header)  # first: routes match in order
    for router in (clusters.router, banlist.router, analyst.router, admin.router, ops.router):
        app.include_router(router)
    return app
