"""Detection runs requested over HTTP, each in its own child process.

A run is CPU-heavy; on the API's event loop or its threads it would wreck lookup latency, so
:class:`RunLauncher` starts ``sentra-graph run`` as a subprocess, records it in the store's job
history and waits for it asynchronously.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from sentra_graph.config import ENV_PREFIX, Settings
from sentra_graph.store import Store
from sentra_graph.store.locks import DETECTION_RUN_LOCK

log = logging.getLogger(__name__)

RUN_JOB = "api-run"
"""Job name of runs started through ``POST /v1/runs`` in the store's job history."""

OUTPUT_TAIL = 4000
"""Characters of a run's output kept in its job record."""

STOP_GRACE_SECONDS = 10.0


class RunInProgress(RuntimeError):
    """A detection run is already going on; the message says which."""


class RunUnavailable(RuntimeError):
    """The run command could not be started; the message says why."""


def default_run_command() -> list[str]:
    """``sentra-graph run`` under this very interpreter (``python -m sentra_graph run``)."""
    return [sys.executable, "-m", "sentra_graph", "run"]


def child_env(settings: Settings, store: Store) -> dict[str, str]:
    """The environment of a run: this server's, with its settings and store spelled out.

    API keys are left out: a run does not need them.
    """
    env = dict(os.environ)
    for name, value in settings.model_dump(mode="json", exclude={"api_keys"}).items():
        variable = f"{ENV_PREFIX}{name.upper()}"
        if value is None:
            env.pop(variable, None)
        else:
            env[variable] = json.dumps(value) if isinstance(value, dict | list) else str(value)
    env.pop(f"{ENV_PREFIX}API_KEYS", None)
    env[f"{ENV_PREFIX}DATABASE_URL"] = store.engine.url.render_as_string(hide_password=False)
    return env


def _tail(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", "replace")[-OUTPUT_TAIL:].strip()


RUN_LOCK = DETECTION_RUN_LOCK
"""The store lock every detection run holds (the pipeline module is not imported here: it
loads the whole engine into the server)."""


def _lock_is_free(store: Store) -> bool:
    """Whether no other process holds the store's detection-run lock (probed, then released)."""
    with store.run_lock(RUN_LOCK) as acquired:
        return bool(acquired)


class RunLauncher:
    """Starts at most one run at a time from this server and tracks it to completion."""

    def __init__(
        self,
        store: Store,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.command = list(command) if command else default_run_command()
        self.env = dict(os.environ if env is None else env)
        self._lock = asyncio.Lock()
        self._process: asyncio.subprocess.Process | None = None
        self._job_id: int | None = None
        self._watcher: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def launch(self, requested_by: str) -> int:
        """Start a run and return its job id.

        :raises RunInProgress: a run started here, or by another process, is still going.
        :raises RunUnavailable: the run command could not be started.
        """
        async with self._lock:
            if self.busy:
                raise RunInProgress(f"run job {self._job_id} started here is still in progress")
            if not await asyncio.to_thread(_lock_is_free, self.store):
                raise RunInProgress("another process is running detection on this store")
            job_id = await asyncio.to_thread(
                self.store.job_started, RUN_JOB, {"requested_by": requested_by}
            )
            try:
                process = await asyncio.create_subprocess_exec(
                    *self.command,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    env=self.env,
                    start_new_session=True,
                )
            except OSError as error:
                await asyncio.to_thread(
                    self.store.job_finished, job_id, "failed", f"could not start: {error}"
                )
                raise RunUnavailable(f"could not start the run command: {error}") from None
            log.info("detection run job %s started (pid %s)", job_id, process.pid)
            self._process, self._job_id = process, job_id
            self._watcher = asyncio.create_task(self._watch(process, job_id))
            return job_id

    async def _watch(self, process: asyncio.subprocess.Process, job_id: int) -> None:
        stdout, stderr = await process.communicate()
        code = process.returncode
        status = "succeeded" if code == 0 else "failed"
        error = None if code == 0 else (_tail(stderr) or f"exit status {code}")
        details = {"returncode": code, "pid": process.pid, "output": _tail(stdout)}
        log.info("detection run job %s %s (exit status %s)", job_id, status, code)
        await asyncio.to_thread(self.store.job_finished, job_id, status, error, details)

    async def wait(self) -> None:
        """Wait until the run started here (if any) has ended and been recorded."""
        if self._watcher is not None:
            await asyncio.shield(self._watcher)

    async def shutdown(self) -> None:
        """Stop a run still going when the server stops, so no orphan process is left."""
        process = self._process
        if process is not None and process.returncode is None:
            log.warning("stopping detection run job %s: the server is shutting down", self._job_id)
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE_SECONDS)
            except TimeoutError:
                process.kill()
        if self._watcher is not None:
            await self._watcher
