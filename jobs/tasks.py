"""The scheduled jobs, one function each.

Every job opens the store named by the settings, records its execution in the job history
(start, end, status ``succeeded``/``failed``/``skipped``, error, details such as the process
that ran it) and calls one service function. A failing job records its error and re-raises it,
so the scheduler logs the traceback; the next firing runs as usual.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from sentra_graph.banlist import MEDIA_TYPES, write_banlist
from sentra_graph.config import Settings
from sentra_graph.pipeline import RunAlreadyInProgress, run_detection
from sentra_graph.store import Store, open_store

__all__ = [
    "DETECTION_JOB",
    "EXPORT_JOB",
    "FAILED",
    "SKIPPED",
    "SUCCEEDED",
    "detection_run_job",
    "export_banlist_job",
]

logger = logging.getLogger(__name__)

DETECTION_JOB = "detection-run"
EXPORT_JOB = "export-banlist"

SUCCEEDED = "succeeded"
FAILED = "failed"
SKIPPED = "skipped"

WEBHOOK_TIMEOUT_SECONDS = 30.0
"""Longest wait for the export webhook; a slow receiver must not hold up the next export."""

_ERROR_CHARS = 4000
_SUMMARY_FIELDS = {
    "run_id": "run_id",
    "status": "run_status",
    "n_accounts": "n_accounts",
    "n_clusters": "n_clusters",
    "decisions": "decisions",
}

RunDetection = Callable[[Store, Settings], Any]


@contextmanager
def _opened(settings: Settings) -> Iterator[Store]:
    store = open_store(settings.database_url)
    try:
        yield store
    finally:
        store.dispose()


def _origin() -> dict[str, Any]:
    """Which process ran a job (several schedulers may share one store)."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _error_text(error: BaseException) -> str:
    return "".join(traceback.format_exception_only(error)).strip()[:_ERROR_CHARS]


def _json_safe(value: Any) -> Any:
    """``value`` with NumPy scalars and other non-JSON values made plain."""

    def plain(item: Any) -> Any:
        return item.item() if hasattr(item, "item") else str(item)

    return json.loads(json.dumps(value, default=plain))


def _summary_details(summary: Any) -> dict[str, Any]:
    """The job-history details of a run summary (whatever of its fields it has)."""
    details = {}
    for field, key in _SUMMARY_FIELDS.items():
        value = getattr(summary, field, None)
        if value is not None:
            details[key] = _json_safe(value)
    return details


def detection_run_job(settings: Settings, *, run: RunDetection = run_detection) -> str:
    """One detection run, then run retention.

    The run holds the store's cross-process run lock; when another process holds it the job
    is recorded as ``skipped``. After a published run, all but the newest
    ``settings.retention_runs`` runs are deleted.

    :param settings: the store, run and retention settings.
    :param run: the detection service, ``run(store, settings)``, raising
        :class:`~sentra_graph.pipeline.RunAlreadyInProgress` when the lock is held elsewhere.
    :returns: the job's status.
    """
    origin = _origin()
    with _opened(settings) as store:
        job_run_id = store.job_started(DETECTION_JOB, origin)
        try:
            summary = run(store, settings)
            deleted = store.delete_runs_except(settings.retention_runs)
        except RunAlreadyInProgress as busy:
            logger.info("detection run skipped: %s", busy)
            store.job_finished(job_run_id, SKIPPED, details={**origin, "reason": str(busy)})
            return SKIPPED
        except Exception as error:
            store.job_finished(job_run_id, FAILED, error=_error_text(error), details=origin)
            raise
        details = {**origin, **_summary_details(summary), "runs_deleted": deleted}
        store.job_finished(job_run_id, SUCCEEDED, details=details)
    logger.info("detection run finished: %s", details)
    return SUCCEEDED


def _post_webhook(url: str, path: Path, fmt: str) -> str | None:
    """POST the exported file to ``url``; return why it failed, or None.

    The message names the host only: webhook URLs often carry a secret token.
    """
    host = httpx.URL(url).host
    try:
        response = httpx.post(
            url,
            content=path.read_bytes(),
            headers={"Content-Type": MEDIA_TYPES[fmt]},
            timeout=WEBHOOK_TIMEOUT_SECONDS,
        )
    except (httpx.HTTPError, OSError) as error:
        return f"webhook to {host} failed: {type(error).__name__}: {error}"
    if response.is_error:
        return f"webhook to {host} failed: HTTP {response.status_code}"
    return None


def export_banlist_job(settings: Settings) -> str:
    """Write the ban list to ``settings.export_path``, then POST it to the webhook if set.

    A failing webhook is recorded in the job's ``error`` and logged; the export itself still
    succeeded and the file stays in place.

    :param settings: ``export_path``, ``export_format``, ``export_min_decision`` and
        ``export_webhook_url`` say what to write and where to send it.
    :returns: the job's status.
    """
    origin = _origin()
    path = Path(settings.export_path)
    fmt = settings.export_format
    with _opened(settings) as store:
        job_run_id = store.job_started(EXPORT_JOB, origin)
        try:
            rows = write_banlist(store, path, fmt, settings.export_min_decision)
        except Exception as error:
            store.job_finished(job_run_id, FAILED, error=_error_text(error), details=origin)
            raise
        details: dict[str, Any] = {
            **origin,
            "path": str(path),
            "format": fmt,
            "min_decision": settings.export_min_decision,
            "rows": rows,
        }
        webhook_error = None
        if settings.export_webhook_url:
            webhook_error = _post_webhook(settings.export_webhook_url, path, fmt)
            details["webhook"] = "failed" if webhook_error else "delivered"
            if webhook_error:
                logger.warning("ban list exported, but %s", webhook_error)
        store.job_finished(job_run_id, SUCCEEDED, error=webhook_error, details=details)
    logger.info("ban list exported: %d accounts to %s", rows, path)
    return SUCCEEDED
