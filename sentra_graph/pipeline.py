"""One detection run: store -> features -> graph -> clusters -> scores -> published decisions.

The run writes everything under a new run id and publishes in one transaction at the end; a run
that fails at any stage is recorded as failed with its reason and the previous run stays served.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sentra_graph.config import Settings, get_settings
from sentra_graph.detect import DetectContext, Detection, detect
from sentra_graph.features.prompts import TemplateModel
from sentra_graph.params import EngineParams
from sentra_graph.store import Store
from sentra_graph.store.locks import DETECTION_RUN_LOCK

log = logging.getLogger(__name__)

TEMPLATE_MODEL_NAME = "prompt-templates"
RUN_LOCK = DETECTION_RUN_LOCK
_WINDOW_EPSILON = dt.timedelta(microseconds=1)


class RunAlreadyInProgress(RuntimeError):
    """Another process holds the detection-run lock."""


@dataclass
class RunSummary:
    run_id: str
    status: str
    published_at: dt.datetime | None
    window_start: dt.datetime
    window_end: dt.datetime
    n_accounts: int
    n_clusters: int
    decisions: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.decisions.items())
        total = sum(self.timings.values())
        return (
            f"run {self.run_id} published: {self.n_accounts} accounts scored, "
            f"{self.n_clusters} farms, {counts} ({total:.1f} s)"
        )


def new_run_id(now: dt.datetime | None = None) -> str:
    """A sortable, unique run id, e.g. ``r20261125T101500-1a2b3c``."""
    now = now or dt.datetime.now(dt.UTC)
    return f"r{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def resolve_window(
    store: Store, window_days: float, window_end: dt.datetime | None
) -> tuple[dt.datetime, dt.datetime]:
    """The run's window: ``window_days`` ending at ``window_end`` or just after the newest data."""
    if window_end is None:
        _, newest = store.data_time_range()
        window_end = (newest + _WINDOW_EPSILON) if newest else dt.datetime.now(dt.UTC)
    return window_end - dt.timedelta(days=window_days), window_end


class _Stages:
    """Times named stages and reports them to an optional progress callback."""

    def __init__(self, progress: Callable[[str], None] | None) -> None:
        self.timings: dict[str, float] = {}
        self.progress = progress

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.progress:
            self.progress(name)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - started, 3)


def assign_templates(
    store: Store,
    requests: pd.DataFrame,
    start: dt.datetime,
    end: dt.datetime,
    params: EngineParams,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Give the window's requests without one their prompt template (each request once, ever).

    ``requests`` is the window as :meth:`~sentra_graph.store.Store.read_window` returns it;
    its missing ``template_id`` s are filled in place. Fits the template model on a bounded
    sample the first time, then reuses the saved model. Prompts are streamed only over the
    time range of the requests without a template (after the first run, the newest ones),
    and each batch is written by a worker thread while the next one is assigned: the write is
    mostly the database's work, so Python and the database each keep a core busy. Returns how
    many requests were assigned.
    """
    pending = requests["template_id"].isna().to_numpy()
    if not pending.any():
        return 0
    model = _saved_template_model(store)
    if model is None:
        sample = store.sample_prompts(start, end, params.templates.sample_size)
        model = TemplateModel.fit(
            sample["prompt"], sample["prompt_embedding"], params.templates, params.seed
        )
        store.save_model(TEMPLATE_MODEL_NAME, model.to_bytes(), {"sample": len(sample)})
    times = requests.loc[pending, "ts"]
    lo = max(start, times.min().to_pydatetime())
    hi = min(end, times.max().to_pydatetime() + _WINDOW_EPSILON)
    ids: list[pa.Array] = []
    templates: list[np.ndarray] = []
    with ThreadPoolExecutor(1, thread_name_prefix="template-writer") as writer:
        written: Future[None] | None = None
        for batch in store.iter_pending_prompts(lo, hi, params.templates.batch_size):
            assigned = pd.DataFrame(
                {
                    "request_id": batch["request_id"],
                    "ts": batch["ts"],
                    "template_id": model.assign(batch["prompt"], batch["prompt_embedding"]),
                }
            )
            del batch
            if written is not None:
                written.result()  # at most one batch waits to be written
            written = writer.submit(store.set_template_ids, assigned)
            ids.append(_arrow_text(assigned["request_id"]))
            templates.append(assigned["template_id"].to_numpy())
            if progress:
                progress(f"templates: {sum(len(i) for i in ids)} requests assigned")
        if written is not None:
            written.result()
    _fill_templates(requests, ids, templates)
    return sum(len(i) for i in ids)


def _fill_templates(
    requests: pd.DataFrame, ids: list[pa.Array], templates: list[np.ndarray]
) -> None:
    """Write assigned template ids into the window's rows of the same request_id."""
    if not ids:
        return
    where = pc.index_in(_arrow_text(requests["request_id"]), value_set=pa.concat_arrays(ids))
    found = where.is_valid().to_numpy(zero_copy_only=False)
    rows = where.to_numpy(zero_copy_only=False)[found].astype(np.int64)
    column = requests["template_id"].to_numpy(dtype=np.float64, copy=True)
    column[found] = np.concatenate(templates)[rows]
    requests["template_id"] = column


def _arrow_text(values: pd.Series) -> pa.Array:
    """A text column as an Arrow large_string array of its own: a copy, so that keeping it does
    not keep alive the driver's batch it came from (prompts included)."""
    array = pa.array(values, from_pandas=True)
    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    empty = pa.array([], pa.large_string())
    return pa.concat_arrays([empty, *(chunk.cast(pa.large_string()) for chunk in chunks)])


def _saved_template_model(store: Store) -> TemplateModel | None:
    """The saved template model, or None when there is none or it was saved in an older
    format (it is then refitted; ids already assigned stay as they are)."""
    saved = store.load_model(TEMPLATE_MODEL_NAME)
    if saved is None:
        return None
    try:
        return TemplateModel.from_bytes(saved[0])
    except ValueError as error:
        log.warning("refitting the prompt-template model: %s", error)
        return None


def run_detection(
    store: Store,
    settings: Settings | None = None,
    params: EngineParams | None = None,
    *,
    window_end: dt.datetime | None = None,
    progress: Callable[[str], None] | bool = False,
) -> RunSummary:
    """Run detection on the store's window and publish its decisions.

    ``progress`` is a callback taking a stage name (``True`` logs stages). Raises
    :class:`RunAlreadyInProgress` when another process is running detection on this store.
    """
    with store.run_lock(RUN_LOCK) as acquired:
        if not acquired:
            raise RunAlreadyInProgress("another detection run holds the lock on this store")
        return _run_locked(
            store,
            settings or get_settings(),
            params or EngineParams(),
            window_end,
            progress,
        )


def _run_locked(
    store: Store,
    settings: Settings,
    params: EngineParams,
    window_end: dt.datetime | None,
    progress: Callable[[str], None] | bool,
) -> RunSummary:
    callback = _log_stage if progress is True else (progress or None)
    start, end = resolve_window(store, settings.window_days, window_end)
    run_id = new_run_id()
    recorded = {
        "engine": params.as_dict(),
        "block_threshold": settings.block_threshold,
        "review_threshold": settings.review_threshold,
        "window_days": settings.window_days,
    }
    store.start_run(run_id, start, end, recorded)
    stages = _Stages(callback)
    try:
        with stages.stage("read"):
            accounts, requests = store.read_window(start, end)
            context = _context(store, settings, params, end)
        with stages.stage("templates"):
            assign_templates(store, requests, start, end, params, callback)
            del requests["request_id"]
        with stages.stage("detect"):
            detection = detect(accounts, requests, context, params, progress=callback)
        with stages.stage("write"):
            store.write_results(
                run_id, detection.clusters, detection.memberships, detection.decisions
            )
        timings = {**stages.timings, **{f"detect.{k}": v for k, v in detection.timings.items()}}
        stats = _stats(accounts, requests, detection)
        with stages.stage("publish"):
            published_at = store.publish_run(
                run_id, timings, stats, dt.timedelta(days=settings.decision_expiry_days)
            )
        timings["publish"] = stages.timings["publish"]
    except BaseException as error:
        store.fail_run(run_id, f"{type(error).__name__}: {error}", stages.timings)
        raise
    return RunSummary(
        run_id=run_id,
        status="succeeded",
        published_at=published_at,
        window_start=start,
        window_end=end,
        n_accounts=len(detection.decisions),
        n_clusters=len(detection.clusters),
        decisions={
            d: int((detection.decisions["decision"] == d).sum())
            for d in ("block", "review", "allow")
        },
        timings={k: v for k, v in timings.items() if "." not in k},
    )


def _context(
    store: Store, settings: Settings, params: EngineParams, end: dt.datetime
) -> DetectContext:
    previous = store.latest_published_run()
    memberships = (
        store.run_memberships(previous["run_id"])[["account_id", "cluster_id"]]
        if previous
        else pd.DataFrame(columns=["account_id", "cluster_id"])
    )
    return DetectContext(
        feedback=store.feedback_labels()[["account_id", "label"]],
        allowlist=store.allowlist()[["kind", "value"]],
        previous_memberships=memberships,
        block_threshold=settings.block_threshold,
        review_threshold=settings.review_threshold,
        window_end=end,
        seed=params.seed,
    )


def _stats(accounts: pd.DataFrame, requests: pd.DataFrame, detection: Detection) -> dict:
    return {
        "accounts": len(accounts),
        "requests": len(requests),
        "scored": len(detection.decisions),
        "clusters": len(detection.clusters),
        **{str(k): v for k, v in detection.stats.items()},
    }


def _log_stage(name: str) -> None:
    log.info("stage: %s", name)
