"""The ban list: every served account whose decision is at least a threshold, as CSV or JSON.

The format is fixed by the interface contract (section 2.2): columns
``account_id,decision,score,cluster_id,reasons`` in that order; in CSV ``reasons`` are joined
with ``"; "`` and an absent ``cluster_id`` is an empty cell, in JSON ``reasons`` is an array and
an absent ``cluster_id`` is ``null``. The CLI verb ``export-banlist``, the API's ``/v1/banlist``
and the scheduler's export job all go through this module, so they always agree.

>>> frame = pd.DataFrame(
...     {"account_id": ["a1"], "decision": ["block"], "score": [0.9],
...      "cluster_id": [None], "reasons": [["shares a card", "burst sign-up"]]}
... )
>>> print(render_banlist(frame, "csv"), end="")
account_id,decision,score,cluster_id,reasons
a1,block,0.9,,shares a card; burst sign-up
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from io import StringIO
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from sentra_graph.store import Store

__all__ = [
    "BANLIST_COLUMNS",
    "FORMATS",
    "MEDIA_TYPES",
    "MIN_DECISIONS",
    "REASONS_SEPARATOR",
    "banlist_frame",
    "render_banlist",
    "write_banlist",
]

BANLIST_COLUMNS = ("account_id", "decision", "score", "cluster_id", "reasons")
"""The ban list's columns, in the contract's order."""

FORMATS = ("csv", "json")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
"""The HTTP ``Content-Type`` of each format (API responses, the export webhook)."""

MIN_DECISIONS = ("block", "review")
"""``block``: blocked accounts only; ``review``: accounts under review or blocked."""

REASONS_SEPARATOR = "; "
"""How a CSV cell joins an account's reasons (the contract's separator)."""

NEW_FILE_MODE = 0o644
"""Mode of a newly created export: readable by the gateway or web server that serves it."""


def _check(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}; found {value!r}")


def _reason_list(value: Any) -> list[str]:
    """A stored ``reasons`` value (a JSON list of strings, or None) as a list of strings."""
    if isinstance(value, list):
        return value
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    if isinstance(value, str):
        return [value]
    return [str(reason) for reason in value]


def banlist_frame(store: Store, min_decision: str = "block") -> pd.DataFrame:
    """The served accounts whose decision is at least ``min_decision``, highest score first.

    :param store: the store whose published decisions are read.
    :param min_decision: ``"block"`` (blocked only) or ``"review"`` (review or block).
    :returns: a frame with :data:`BANLIST_COLUMNS`; ``cluster_id`` is None when absent and
        ``reasons`` holds a list of strings.
    """
    _check(min_decision, MIN_DECISIONS, "min_decision")
    served = store.current_decisions(min_decision)
    cluster = served["cluster_id"].astype(object)
    return pd.DataFrame(
        {
            "account_id": served["account_id"].astype(object),
            "decision": served["decision"].astype(object),
            "score": served["score"].astype(float),
            "cluster_id": cluster.where(cluster.notna(), None),
            "reasons": pd.Series(
                [_reason_list(value) for value in served["reasons"]], dtype=object
            ),
        },
        columns=list(BANLIST_COLUMNS),
    ).reset_index(drop=True)


def _write_csv(frame: pd.DataFrame, handle: IO[str]) -> None:
    table = frame[list(BANLIST_COLUMNS)].copy()
    table["reasons"] = [REASONS_SEPARATOR.join(_reason_list(r)) for r in table["reasons"]]
    table.to_csv(handle, index=False, lineterminator="\n", na_rep="")


def _json_records(frame: pd.DataFrame) -> Iterable[str]:
    columns = frame[list(BANLIST_COLUMNS)].astype(object)
    for account_id, decision, score, cluster_id, reasons in columns.itertuples(
        index=False, name=None
    ):
        yield json.dumps(
            {
                "account_id": account_id,
                "decision": decision,
                "score": float(score),
                "cluster_id": None if pd.isna(cluster_id) else cluster_id,
                "reasons": _reason_list(reasons),
            },
            ensure_ascii=False,
        )


def _write_json(frame: pd.DataFrame, handle: IO[str]) -> None:
    """A JSON array with one object per line, so large lists stream and diff well."""
    handle.write("[")
    for position, record in enumerate(_json_records(frame)):
        handle.write(",\n" if position else "\n")
        handle.write(record)
    handle.write("\n]\n" if len(frame) else "]\n")


def _write(frame: pd.DataFrame, fmt: str, handle: IO[str]) -> None:
    _check(fmt, FORMATS, "format")
    if fmt == "csv":
        _write_csv(frame, handle)
    else:
        _write_json(frame, handle)


def render_banlist(frame: pd.DataFrame, fmt: str) -> str:
    """The ban list ``frame`` (from :func:`banlist_frame`) as CSV or JSON text.

    :param frame: rows with :data:`BANLIST_COLUMNS`.
    :param fmt: ``"csv"`` or ``"json"``.

    >>> frame = pd.DataFrame(
    ...     {"account_id": ["a1"], "decision": ["review"], "score": [0.6],
    ...      "cluster_id": ["F-1"], "reasons": [["a, b"]]}
    ... )
    >>> json.loads(render_banlist(frame, "json"))[0]["reasons"]
    ['a, b']
    >>> render_banlist(frame.iloc[:0], "json")
    '[]\\n'
    """
    buffer = StringIO(newline="")
    _write(frame, fmt, buffer)
    return buffer.getvalue()


def _target_mode(path: Path) -> int:
    """Keep an existing export's permissions; a new one gets :data:`NEW_FILE_MODE`."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return NEW_FILE_MODE


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_banlist(
    store: Store, path: str | os.PathLike[str], fmt: str = "csv", min_decision: str = "block"
) -> int:
    """Write the ban list to ``path`` atomically and return how many accounts it lists.

    The list is written to a temporary file in the same directory, flushed to disk and renamed
    over ``path``: a reader (or a crash) sees either the previous whole file or the new one,
    never a partial file.

    :param store: the store whose published decisions are exported.
    :param path: the target file; its directory is created when missing.
    :param fmt: ``"csv"`` or ``"json"``.
    :param min_decision: ``"block"`` or ``"review"``.
    """
    _check(fmt, FORMATS, "format")
    frame = banlist_frame(store, min_decision)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = _target_mode(target)
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with open(fd, "w", encoding="utf-8", newline="") as handle:
            _write(frame, fmt, handle)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)
    return len(frame)
