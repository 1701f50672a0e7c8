"""The scheduler: periodic detection runs and ban-list exports, run in this process.

``sentra-graph schedule`` calls :func:`run_scheduler`. Jobs execute in the scheduler's own
threads, never in the API server's process. Each job fires on an interval
(``SENTRA_RUN_INTERVAL_MINUTES``, ``SENTRA_EXPORT_INTERVAL_MINUTES``; an interval job also
fires once at start, so a fresh deployment serves a ban list right away) or, when set, on a
crontab expression in UTC (``SENTRA_RUN_CRON``, ``SENTRA_EXPORT_CRON``).

Within a process a job never overlaps itself (``max_instances=1``) and missed firings collapse
into one (``coalesce=True``). Across processes -- several schedulers on one store, or an
operator's ``sentra-graph run`` -- detection runs never overlap either: each holds the store's
run lock (:meth:`~sentra_graph.store.Store.run_lock`), and a run that finds it taken is
recorded as skipped.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from jobs.tasks import DETECTION_JOB, EXPORT_JOB, detection_run_job, export_banlist_job
from sentra_graph.config import ConfigError, Settings

__all__ = ["MISFIRE_GRACE_SECONDS", "build_scheduler", "job_trigger", "run_scheduler"]

logger = logging.getLogger(__name__)

MISFIRE_GRACE_SECONDS = 300
"""A firing late by up to this much (busy machine, clock jump) still runs, coalesced."""

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

JobFunction = Callable[[Settings], object]


def job_trigger(cron: str | None, interval_minutes: float, cron_variable: str) -> BaseTrigger:
    """The trigger of a job: the crontab expression ``cron`` if set, else the interval.

    :param cron: a five-field crontab expression (minute hour day month weekday), UTC.
    :param interval_minutes: the interval used when ``cron`` is not set.
    :param cron_variable: the setting that holds ``cron``, named in the error message.

    >>> print(job_trigger("0 */6 * * *", 60, "SENTRA_RUN_CRON"))
    cron[month='*', day='*', day_of_week='*', hour='*/6', minute='0']
    >>> job_trigger(None, 1.5, "SENTRA_RUN_CRON").interval
    datetime.timedelta(seconds=90)
    """
    if cron:
        try:
            return CronTrigger.from_crontab(cron, timezone=dt.UTC)
        except ValueError as error:
            raise ConfigError(
                f"{cron_variable}: expected a crontab expression such as '*/15 * * * *' "
                f"(minute hour day month weekday, UTC), found {cron!r} ({error})"
            ) from None
    return IntervalTrigger(minutes=interval_minutes, timezone=dt.UTC)


def build_scheduler(
    settings: Settings,
    *,
    detection_job: JobFunction = detection_run_job,
    export_job: JobFunction = export_banlist_job,
) -> BlockingScheduler:
    """A scheduler with the detection-run and ban-list-export jobs registered, not started.

    :param settings: the schedule (intervals or crontab expressions) and what the jobs need.
    :param detection_job: the detection job, called as ``detection_job(settings)``.
    :param export_job: the export job, called as ``export_job(settings)``.
    """
    scheduler = BlockingScheduler(timezone=dt.UTC)
    schedule = (
        (DETECTION_JOB, detection_job, settings.run_cron, settings.run_interval_minutes, "RUN"),
        (EXPORT_JOB, export_job, settings.export_cron, settings.export_interval_minutes, "EXPORT"),
    )
    for job_id, function, cron, minutes, prefix in schedule:
        trigger = job_trigger(cron, minutes, f"SENTRA_{prefix}_CRON")
        first = {} if cron else {"next_run_time": dt.datetime.now(dt.UTC)}
        scheduler.add_job(
            function,
            trigger,
            args=(settings,),
            id=job_id,
            name=job_id,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
            **first,
        )
    return scheduler


def run_scheduler(settings: Settings, scheduler: BlockingScheduler | None = None) -> None:
    """Run the scheduler until SIGTERM or SIGINT, then stop once running jobs have finished.

    A second signal stops the process at once. Returns normally after a clean stop.

    :param settings: the settings :func:`build_scheduler` uses.
    :param scheduler: a scheduler to run instead of ``build_scheduler(settings)``.
    """
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    scheduler = scheduler or build_scheduler(settings)
    stoppers: list[threading.Thread] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        logger.info(
            "%s received: stopping once running jobs finish (send it again to stop now)",
            signal.Signals(signum).name,
        )
        # Shut down from a thread: waiting for jobs inside the handler could deadlock with
        # whatever the interrupted main thread was holding.
        stopper = threading.Thread(
            target=scheduler.shutdown, kwargs={"wait": True}, name="scheduler-shutdown"
        )
        stoppers.append(stopper)
        stopper.start()

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        for job in scheduler.get_jobs():
            logger.info("job %s: %s", job.id, job.trigger)
        scheduler.start()
    finally:
        for stopper in stoppers:
            stopper.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    logger.info("scheduler stopped")
